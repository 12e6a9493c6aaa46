"""Provenance and size of every domain of a space, and how long extracting them takes.

    python experiments/domain_card/study.py run                    # math-v1, rows in docs/results/domains_math_v1.csv
    python experiments/domain_card/study.py run --space code-v1    # rows in docs/results/domains_code_v1.csv
    python experiments/domain_card/study.py report --space code-v1 # the table, also on docs/results/domain_card.md
    python experiments/domain_card/study.py run --space math --csv /tmp/math.csv

``run`` extracts each domain as ``prepare`` extracts it, at the default ``DataConfig`` and without a model: a
corpus's documents (for a topic: its cluster, the corpus clustered once for all its topics) split into
train and held-out by hash, train text capped at ``max_train_chars``; a problem family's train problems
generated up to ``max_train_chars`` and its unseen held-out problems. One row per domain goes to ``--csv``: its
field, where its text comes from (the corpus and cluster with the cluster's top TF-IDF terms, or the
generator with its options), its documents (a problem family's: the train problems prepare generates;
the family is unlimited), their characters, the train characters prepare keeps, the held-out documents,
and the seconds its extraction took. ``report`` prints the table; its last line is the total, what a fresh
machine spends extracting at prepare time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import pandas as pd

from mixing_gym.domains import Domain, DomainSpace, get_domain_space
from mixing_gym.prepare import DataConfig, generate_problems, split_documents, take_chars
from mixing_gym.result_pages import publish_report
from mixing_gym.sources import PackageCodeSource, ProblemSource, ReasoningGymSource, TextSource
from mixing_gym.storage import upsert_csv
from mixing_gym.topics import TopicSource, topic_name, topic_terms

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"


def results_csv(space: str) -> Path:
    """Where a space's rows go by default: ``docs/results/domains_<space>.csv``, ``-`` and ``.`` as ``_``.

    Args:
        space: the space's name.
    """
    return RESULTS / f"domains_{space.replace('-', '_').replace('.', '_')}.csv"


def provenance(source: TextSource) -> tuple[str, str]:
    """Where a source's text comes from, and (for a topic) its top terms.

    Args:
        source: the domain's source.
    """
    if isinstance(source, TopicSource):
        return (f"{_corpus(source.base)}, topic {source.topic} of {source.topics} "
                f"({topic_name(source)})", " ".join(topic_terms(source, 8)))
    if isinstance(source, ReasoningGymSource):
        text = "reasoning-gym " + " + ".join(source.generators)
        if source.options:
            text += " (" + ", ".join(f"{name}={value}" for name, value in source.options) + ")"
        if source.exclude_templates:
            text += f", without GSM templates {', '.join(map(str, source.exclude_templates))}"
        return text, ""
    return f"{_corpus(source)} (whole corpus)", ""


def _corpus(source: TextSource) -> str:
    """A corpus's name in the table: its kind, and for an installed package's files which package and files.

    Args:
        source: the corpus.
    """
    identity = source.describe()
    if isinstance(source, PackageCodeSource):
        files = "tests" if source.tests else "library code" if source.suffix == ".py" else f"*{source.suffix} files"
        return f"{source.package} {identity['version']} {files}"
    return identity["kind"] + (" tests" if identity.get("tests") else "")


def extract(domain: Domain, config: DataConfig) -> dict:
    """One domain's row: extracted as ``prepare`` does, timed.

    Args:
        domain: the domain.
        config: the data config whose sizes apply.
    """
    start = time.perf_counter()
    if isinstance(domain.source, ProblemSource):
        train, heldout = generate_problems(domain.source, config)
        documents = [problem.text for problem in train]
        kept = documents
    else:
        documents = domain.source.documents()
        train_documents, heldout = split_documents(documents, config.heldout_fraction)
        kept = take_chars(train_documents, config.max_train_chars)
    seconds = time.perf_counter() - start
    where, terms = provenance(domain.source)
    return {"domain": domain.name, "field": domain.field, "provenance": where, "top_terms": terms,
            "documents": len(documents), "characters": sum(map(len, documents)),
            "train_characters": sum(map(len, kept)), "heldout_documents": len(heldout),
            "extract_seconds": round(seconds, 2)}


def report(space: DomainSpace, path: Path) -> None:
    """Print the space's table from its CSV.

    Args:
        space: the space.
        path: the CSV ``run`` wrote.
    """
    rows = pd.read_csv(path, keep_default_na=False).to_dict("records")
    config = DataConfig()
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    print(f"Rows: [{shown.name}]({shown}), one per domain. Space `{space.name}`, {len(space)} domains "
          f"({len(space.source_names)} source, {len(space.target_names)} "
          f"target), default DataConfig (train text capped at {config.max_train_chars:,} characters)\n")
    print("| domain | field | provenance | top terms | documents | characters | train chars | held-out docs | s |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        terms = f"`{row['top_terms']}`" if row["top_terms"] else ""
        print(f"| `{row['domain']}` | {row['field']} | `{row['provenance']}` | {terms} | "
              f"{row['documents']:,} | {row['characters']:,} | {row['train_characters']:,} | "
              f"{row['heldout_documents']:,} | {row['extract_seconds']:.1f} |")
    print(f"\nExtracting all {len(rows)} domains took {sum(row['extract_seconds'] for row in rows):.1f} s in all "
          f"(train text in all: {sum(row['train_characters'] for row in rows):,} characters).")


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "domain_card.md"
PAGE_TITLE = "Domain cards"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: extract the domains; report: the table")
    parser.add_argument("--space", default="math-v1", help="a built-in space, or a YAML file (default: math-v1)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="one row per domain (default: docs/results/domains_<space>.csv, e.g. domains_math_v1.csv)")
    args = parser.parse_args()

    # A space file may declare Hugging Face datasets: read them from the local cache only, never download.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    space = get_domain_space(args.space)
    path = args.csv or results_csv(space.name)
    if args.step == "run":
        config = DataConfig()
        rows = pd.DataFrame([extract(domain, config) for domain in space.domains])
        upsert_csv(path, rows, ["domain"])
        print(f"{len(rows)} domains of {space.name!r}: rows in {path}", file=sys.stderr)
        return
    command = shlex.join(["python", "experiments/domain_card/study.py", *sys.argv[1:]])
    publish_report(lambda: report(space, path), PAGE, PAGE_TITLE, __doc__, __file__, command)


if __name__ == "__main__":
    main()
