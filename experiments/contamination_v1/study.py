"""How much of each benchmark's text the training data already holds, per prepared benchmark of a space.

    python experiments/contamination_v1/study.py run       # math-v1, code-v1: docs/results/contamination_v1.csv
    python experiments/contamination_v1/study.py run --space math-v1 --csv /tmp/math.csv
    python experiments/contamination_v1/study.py report    # the table, printed and on docs/results/contamination_v1.md

The split by document hash keeps train and held-out documents apart, not the text that one document
copies from another (licences share boilerplate, test modules repeat helpers). This audit measures what
that leaves. ``run`` prepares the space's data at the default ``DataConfig`` (reusing the cache), decodes every
domain's train tokens, the text the proxy can train on, and checks each item of every benchmark:

- ``ngram13``: the share of items with a 13-word n-gram that some train document also holds (lowercased,
  split on whitespace). This is the test GPT-3 and lm-eval's decontamination use. A generated problem
  matches it through its template's wording as well as through a copied item.
- ``gold_verbatim``: the share of items whose gold text (a task's answer, a multiple-choice item's correct
  choice, an LM passage) the train text holds verbatim, whitespace aside. Only golds of at least 40
  characters count (shorter ones, ``#### 12``, turn up anywhere), and ``gold_items`` says how many there were.

One row per benchmark goes to ``--csv`` (its space's rows replaced, the other spaces' kept).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from mixing_gym.benchmark_data import normalized_code
from mixing_gym.domains import get_domain_space
from mixing_gym.prepare import DataConfig, PreparedData, prepare_data
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import read_jsonl, upsert_csv

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
NGRAM = 13
MIN_GOLD_CHARS = 40
COLUMNS = ["space", "benchmark", "kind", "field", "items", "ngram13", "gold_items", "gold_verbatim"]


def item_texts(row: dict) -> tuple[str, str]:
    """An item's whole text and its gold text, for the three kinds of rows ``prepare`` writes."""
    if "text" in row:  # a bits-per-byte passage
        return row["text"], row["text"]
    if "answer" in row:  # a task: prompt and answer
        return row["prompt"] + row["answer"], row["answer"]
    gold = row["choices"][row["gold"]]  # multiple choice
    return row["context"] + " " + gold, gold


def ngrams(words: list[str]) -> set[str]:
    """The text's :data:`NGRAM`-word n-grams, joined by single spaces."""
    return {" ".join(words[i:i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


def train_text(data: PreparedData) -> str:
    """Every domain's train tokens, decoded: what the proxy can see in training."""
    tokenizer = data.tokenizer
    return "\n\n".join(tokenizer.decode(data.train_tokens(domain.name).tolist()) for domain in data.space.domains)


def audit(space_name: str, cache_dir: str | None) -> list[dict]:
    """One row per benchmark of ``space_name``'s prepared data.

    Args:
        space_name: a built-in space.
        cache_dir: the cache root (``None``: ``$MIXING_GYM_CACHE``).
    """
    space = get_domain_space(space_name)
    data = prepare_data(space, DataConfig(), cache_dir)
    roles = data.manifest["benchmarks"]
    train = train_text(data)
    flat_train = normalized_code(train)
    train_words = train.lower().split()

    benchmarks = {}
    for file in sorted(data.tasks_dir.glob("*.jsonl")):
        texts = [item_texts(row) for row in read_jsonl(file)]
        benchmarks[file.stem] = [(ngrams(text.lower().split()), normalized_code(gold)) for text, gold in texts]

    wanted = set().union(*(grams for items in benchmarks.values() for grams, _ in items))
    # One pass over the train words finds which of the items' n-grams occur at all.
    found = {gram for i in range(len(train_words) - NGRAM + 1)
             if (gram := " ".join(train_words[i:i + NGRAM])) in wanted}

    results = []
    for name, items in benchmarks.items():
        role = roles[name]
        golds = [gold for _, gold in items if len(gold) >= MIN_GOLD_CHARS]
        results.append({
            "space": space.name, "benchmark": name, "kind": role["kind"], "field": role["field"],
            "items": len(items),
            "ngram13": round(sum(bool(grams & found) for grams, _ in items) / len(items), 4),
            "gold_items": len(golds),
            "gold_verbatim": round(sum(gold in flat_train for gold in golds) / len(golds), 4) if golds else "",
        })
    return results


def report(path: Path) -> None:
    """Print the audit's table from its CSV.

    Args:
        path: the CSV ``run`` wrote.
    """
    rows = pd.read_csv(path).to_dict("records")
    shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
    print(f"Rows: [{shown.name}]({shown}), one per benchmark.\n")
    print(f"| space | benchmark | kind | field | items | {NGRAM}-gram in train | gold verbatim (of n) |")
    print("|---|---|---|---|---:|---:|---:|")
    for row in rows:
        gold = f"{row['gold_verbatim']:.0%} ({row['gold_items']})" if row["gold_items"] else "-"
        print(f"| {row['space']} | {row['benchmark']} | {row['kind']} | {row['field']} | {row['items']} "
              f"| {row['ngram13']:.0%} | {gold} |")


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "contamination_v1.md"
PAGE_TITLE = "Contamination of the v1 benchmarks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: audit the spaces; report: the table")
    parser.add_argument("--space", action="append", help="a space to audit (repeatable; default math-v1, code-v1)")
    parser.add_argument("--cache-dir", default=None, help="cache root (default: $MIXING_GYM_CACHE)")
    parser.add_argument("--csv", type=Path, default=RESULTS / "contamination_v1.csv")
    args = parser.parse_args()
    if args.step == "run":
        for space in args.space or ["math-v1", "code-v1"]:
            upsert_csv(args.csv, pd.DataFrame(audit(space, args.cache_dir), columns=COLUMNS), ["space", "benchmark"])
        return
    command = shlex.join(["python", "experiments/contamination_v1/study.py", *sys.argv[1:]])
    publish_report(lambda: report(args.csv), PAGE, PAGE_TITLE, __doc__, __file__, command)


if __name__ == "__main__":
    main()
