"""Domain descriptors: do they rank the domains each task draws on first, and do they agree with what RegMix learned?

    python experiments/domain_descriptors/study.py run               # prepares the data of four spaces (no model)
    python experiments/domain_descriptors/study.py report            # the tables, their CSV and the results page
    python experiments/domain_descriptors/study.py record-layouts    # maintenance: descriptors into recorded layouts

``run`` prepares the data of ``math-v1``, ``code-v1``, ``math-v1-whole-corpora`` (the headline's unseen space,
setting (b)) and ``math-v1-code-source`` (the unseen source field, setting (f)) at the default ``DataConfig`` (the
``small`` preset's data; data only, no model is trained) and writes every domain's descriptors
(:mod:`mixing_gym.descriptors`: its DSIR-style importance toward each task benchmark, its unique training tokens) to
``docs/results/domain_descriptors_data.csv``, one row per (space, domain, descriptor).

``report`` reads that CSV only. Each task benchmark records the domains it draws on (``TaskBenchmark.draws_on``,
what the task-aware mixture is written from); per (space, task) it gives Spearman's correlation between the task's
importance over the space's domains and the indicator of those domains, the probability that a drawn-on domain ranks
above one that is not (AUC), and the domain the importance ranks first, into ``docs/results/domain_descriptors.csv``.
With a single drawn-on domain among K, Spearman cannot exceed ``sqrt(3 / (K + 1))`` (0.31 for K = 30): the AUC says
how close to the top the drawn-on domains rank. It then compares the descriptors with what RegMix learned in setting
(b): RegMix fit as the headline fits it (``RegMix.from_runs`` on the 64 runs of
``docs/results/regmix_runs_v1_small_unseen_space.csv``, seed 100), its per-domain effect read two ways (the mixture it
picks, and the correlation of each domain's weight with the predicted objective over random mixtures), against each
domain's mean importance toward the space's target tasks and toward all its tasks (the objective is balanced).

``record-layouts`` adds the descriptors to the layouts that trajectory datasets and surrogates recorded before
descriptors existed (:func:`mixing_gym.recorded_layouts.add_descriptors`; default: the committed reference ones).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr
from threadpoolctl import threadpool_limits

from agents.baselines import RegMix
from mixing_gym.benchmark_data import TASK_BENCHMARKS, task_benchmark_name
from mixing_gym.descriptors import IMPORTANCE_PREFIX
from mixing_gym.domains import get_domain_space
from mixing_gym.prepare import DataConfig, prepare_data
from mixing_gym.recorded_layouts import add_descriptors
from mixing_gym.reference import REFERENCE_DATASETS, REFERENCE_SURROGATES
from mixing_gym.storage import upsert_csv

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
SPACES = ("math-v1", "code-v1", "math-v1-whole-corpora", "math-v1-code-source")
DATA = RESULTS / "domain_descriptors_data.csv"
TABLE = RESULTS / "domain_descriptors.csv"
PAGE = RESULTS / "domain_descriptors.md"
#: Setting (b)'s RegMix: the space, its 64 proxy runs and the seed they were played with (experiments/headline_v1).
REGMIX_SPACE = "math-v1-whole-corpora"
REGMIX_RUNS = RESULTS / "regmix_runs_v1_small_unseen_space.csv"
REGMIX_SEED = 100
REGMIX_BUDGET = 64
#: Random mixtures (flat Dirichlet) over which each domain's weight is correlated with RegMix's prediction.
EFFECT_MIXTURES = 20_000


def run() -> None:
    """Prepare each space's data at the default config and write every domain's descriptors to :data:`DATA`."""
    for space in SPACES:
        data = prepare_data(space, DataConfig())
        fields = dict(zip(data.space.names, data.space.fields))
        rows = pd.DataFrame([{"space": space, "domain": domain, "field": fields[domain], "descriptor": name,
                              "value": value}
                             for domain, values in data.descriptors.items() for name, value in values.items()])
        upsert_csv(DATA, rows, ["space", "domain", "descriptor"])
        print(f"{space}: {len(data.descriptors)} domains, {rows['descriptor'].nunique()} descriptors each")


def importance_table(data: pd.DataFrame, space: str) -> pd.DataFrame:
    """``space``'s importance descriptors, one row per domain in the space's order, one column per task (by its
    :data:`~mixing_gym.benchmark_data.TASK_BENCHMARKS` name).

    Args:
        data: the rows of :data:`DATA`.
        space: a space of :data:`SPACES`.
    """
    rows = data[(data["space"] == space) & data["descriptor"].str.startswith(IMPORTANCE_PREFIX)]
    table = rows.pivot(index="domain", columns="descriptor", values="value")
    table.columns = [task_benchmark_name(column.removeprefix(IMPORTANCE_PREFIX)) for column in table.columns]
    return table.loc[get_domain_space(space).names]


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The probability that a positive item scores above a negative one (ties count half): Mann-Whitney's U over
    the product of the group sizes.

    Args:
        scores: one score per item.
        positive: which items are positive.
    """
    ranks = rankdata(scores)
    count = positive.sum()
    return float((ranks[positive].sum() - count * (count + 1) / 2) / (count * (~positive).sum()))


def agreement(data: pd.DataFrame) -> pd.DataFrame:
    """Per (space, task): how the task's importance over the space's domains agrees with its ``draws_on``.

    Args:
        data: the rows of :data:`DATA`.
    """
    rows = []
    for space in SPACES:
        table = importance_table(data, space)
        names = np.array(table.index)
        for task in table.columns:
            draws_on = np.array([name.startswith(TASK_BENCHMARKS[task].draws_on) for name in names])
            if not draws_on.any():  # (f)'s code tasks: the space holds none of the code they were written from
                continue
            importance = table[task].to_numpy()
            top = int(np.argmax(importance))
            field = TASK_BENCHMARKS[task].field_in(get_domain_space(space).target_field)
            rows.append({"space": space, "task": task, "field": field, "domains": len(names),
                         "draws_on": " ".join(names[draws_on]), "spearman": spearmanr(importance, draws_on).statistic,
                         "auc": auc(importance, draws_on), "top_domain": names[top],
                         "top_drawn_on": bool(draws_on[top])})
    return pd.DataFrame(rows)


def regmix_comparison(data: pd.DataFrame) -> pd.DataFrame:
    """Spearman between RegMix's per-domain effects in setting (b) and the descriptors' importance, one row per pair.

    Args:
        data: the rows of :data:`DATA`.
    """
    space = get_domain_space(REGMIX_SPACE)
    names = space.names
    # One thread: LightGBM and numpy's pools spin on the shared cores.
    with threadpool_limits(limits=1):
        regmix = RegMix.from_runs(pd.read_csv(REGMIX_RUNS).iloc[:REGMIX_BUDGET], names, seed=REGMIX_SEED)
        mixtures = np.random.default_rng(0).dirichlet(np.ones(len(names)), EFFECT_MIXTURES)
        predicted = regmix.regressor.predict(mixtures)
    marginal = np.array([np.corrcoef(mixtures[:, k], predicted)[0, 1] for k in range(len(names))])
    table = importance_table(data, REGMIX_SPACE)
    target = [task for task in table.columns if TASK_BENCHMARKS[task].field_in(space.target_field) == "target"]
    importances = {"target tasks": table[target].mean(axis=1).to_numpy(), "all tasks": table.mean(axis=1).to_numpy()}
    effects = {"picked mixture": regmix.best_mixture, "weight-prediction correlation": marginal}
    rows = []
    for (effect, values), (tasks, importance) in itertools.product(effects.items(), importances.items()):
        for domains, members in (("all", np.ones(len(names), dtype=bool)), ("target field", space.target_mask)):
            rows.append({"regmix_effect": effect, "importance_toward": tasks, "domains": domains,
                         "count": int(members.sum()),
                         "spearman": spearmanr(values[members], importance[members]).statistic})
    return pd.DataFrame(rows)


def report() -> None:
    """Print the tables from :data:`DATA` (Markdown) and write :data:`TABLE`."""
    data = pd.read_csv(DATA)
    table = agreement(data)
    upsert_csv(TABLE, table, ["space", "task"], float_format="%.4f")
    print(f"Descriptors: [{DATA.name}]({DATA.name}); per task: [{TABLE.name}]({TABLE.name}).\n")
    print("### The tasks' importance over the domains against what each task draws on\n")
    print("| space | task | field | drawn-on domains | Spearman | AUC | top domain |\n|---|---|---|---|---:|---:|---|")
    for row in table.itertuples():
        mark = "" if row.top_drawn_on else " (not drawn on)"
        print(f"| {row.space} | {row.task} | {row.field} | {row.draws_on.replace(' ', ', ')} | {row.spearman:.2f} | "
              f"{row.auc:.2f} | {row.top_domain}{mark} |")
    summary = table.groupby("space", sort=False).agg(spearman=("spearman", "mean"), auc=("auc", "mean"),
                                                     top=("top_drawn_on", "sum"), tasks=("task", "count"))
    print("\nPer space, over its tasks: " + "; ".join(
        f"{space}: mean Spearman {row.spearman:.2f}, mean AUC {row.auc:.2f}, top domain drawn on in {row.top:.0f} of "
        f"{row.tasks:.0f}" for space, row in summary.iterrows()) + ".")
    comparison = regmix_comparison(data)
    print(f"\n### What RegMix learned in setting (b) against the descriptors ({REGMIX_SPACE})\n")
    print("| RegMix's per-domain effect | importance toward | domains | Spearman |\n|---|---|---|---:|")
    for row in comparison.itertuples():
        print(f"| {row.regmix_effect} | {row.importance_toward} | {row.domains} ({row.count}) | {row.spearman:+.2f} |")


def record_layouts(folders: list[Path]) -> None:
    """Add the domain descriptors to the layouts recorded in ``folders``.

    Args:
        folders: trajectory dataset and surrogate folders.
    """
    for folder in folders:
        print(f"{add_descriptors(folder)}: descriptors added")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    steps.add_parser("run", help="prepare the spaces' data and write their descriptors")
    steps.add_parser("report", help="the tables, their CSV and the results page, from the descriptors' CSV")
    record = steps.add_parser("record-layouts", help="add the descriptors to recorded layouts")
    reference = [dataset.folder for dataset in REFERENCE_DATASETS.values()]
    reference += [surrogate.folder for surrogate in REFERENCE_SURROGATES.values()]
    record.add_argument("folders", nargs="*", type=Path, default=reference,
                        help="trajectory dataset or surrogate folders (default: the committed reference ones)")
    args = parser.parse_args()
    if args.step == "run":
        run()
    elif args.step == "record-layouts":
        record_layouts(args.folders)
    else:
        command = shlex.join(["python", "experiments/domain_descriptors/study.py", *sys.argv[1:]])
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            report()
        print(f"`{command}`\n\n{printed.getvalue()}", end="")
        summary, about = __doc__.split("\n", 1)
        about = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", about).strip("\n")  # Sphinx roles as code
        PAGE.write_text(f"<!-- Written by the report step of experiments/domain_descriptors/study.py: edit the study, "
                        f"not this page. -->\n# Domain descriptors\n\n{summary}\n\n{about}\n\n## `{command}`"
                        f"\n\n{printed.getvalue()}")


if __name__ == "__main__":
    main()
