"""RegMix's regression on real runs: held-out Spearman of LightGBM, the old HistGradientBoosting model and ridge.

    python experiments/regmix_regressor/study.py run                # 128 micro runs (plays what the CSV lacks)
    python experiments/regmix_regressor/study.py report             # 10 splits of 75/25: the table and its CSV
    python experiments/regmix_regressor/study.py run --runs 256 && python experiments/regmix_regressor/study.py \
        report --runs 256 --splits 20

``run`` plays ``--runs`` fixed-mixture episodes on ``DataMixing-v0`` (``action_mode="weights"``) through the
harness: run ``i`` uses seed ``s = --seed + i`` both for ``env.reset(seed=s)`` and for its mixture, a Dirichlet
draw over the K domains whose concentration is log-uniform in [0.1, 10] (from near one-hot mixtures to near uniform
ones). The same weights are played until the episode ends; the run's score is the balanced objective
``(source_score + target_score) / 2`` of the last step. Each run's row goes to ``--runs-csv`` as soon as it is
played, so a rerun plays only the missing runs.

``report`` fits each model on a random 75% of the runs (``--test-fraction`` 0.25) and scores Spearman's rank
correlation between predicted and actual scores on the other 25%, over ``--splits`` seeded splits; one row
per split and model goes to ``--out-csv`` and the mean and standard deviation per model are printed as a
markdown table, also written to the study's page, ``docs/results/regmix_regressor.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from agents.harness import evaluate_agents
from agents.regression import MixtureRegressor
from agents.search import FixedSchedule
from mixing_gym.envs import target_field_space_of
from mixing_gym.models import get_preset
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import upsert_csv

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
WORK = ROOT / "runs" / "regmix-regressor"
ENV_ID = "DataMixing-v0"
#: Range of the Dirichlet concentration, drawn log-uniformly per run.
ALPHA_RANGE = (0.1, 10.0)
SCORES = ("source", "target", "balanced")


def run_mixture(seed: int, num_domains: int) -> np.ndarray:
    """The mixture of the run with ``seed``: a Dirichlet draw with a log-uniform concentration.

    Args:
        seed: the run's seed (the same one its episode is reset with).
        num_domains: K, the number of domains.
    """
    rng = np.random.default_rng(seed)
    alpha = np.exp(rng.uniform(np.log(ALPHA_RANGE[0]), np.log(ALPHA_RANGE[1])))
    return rng.dirichlet(np.full(num_domains, alpha))


def play_runs(num_runs: int, base_seed: int, preset: str, path: Path) -> None:
    """Play the runs ``0 .. num_runs - 1`` missing from ``path``, writing each one's row as it ends.

    Args:
        num_runs: runs the table should hold.
        base_seed: run ``i`` has seed ``base_seed + i``.
        preset: the proxy preset of the env.
        path: the CSV of runs (created, or resumed).
    """
    names = target_field_space_of(ENV_ID, "math").names
    columns = ["run", "seed", *names, *SCORES]
    runs = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=columns)
    if list(runs.columns) != columns:
        raise ValueError(f"{path} has columns {list(runs.columns)}, this env writes {columns}: "
                         "use another --runs-csv for another preset or domain space.")
    if not (runs["seed"] == runs["run"] + base_seed).all():
        raise ValueError(f"{path} was played with another --seed than {base_seed}.")
    env_kwargs = {"preset": preset, "action_mode": "weights", "torch_threads": 1}
    steps = get_preset(preset).num_steps
    for run in sorted(set(range(num_runs)) - set(runs["run"].astype(int))):
        seed = base_seed + run
        # The weights as the env takes them (float32); the row holds the mixture it trained on, normalised.
        weights = run_mixture(seed, len(names)).astype(np.float32)
        agent = FixedSchedule(np.tile(weights, (steps, 1)))
        record = evaluate_agents({f"run{run}": agent}, [seed], env_kwargs, WORK / preset, progress=False,
                                 env_id=ENV_ID, write_report=False).records[f"run{run}", seed]
        source, target = record["source"], record["target"]
        row = {"run": run, "seed": seed, **dict(zip(names, record["steps"][-1]["mixture"])), "source": source,
               "target": target, "balanced": (source + target) / 2}
        upsert_csv(path, pd.DataFrame([row], columns=columns), ["run"])
        print(f"run {run:4d}  balanced {row['balanced']:+.4f}", flush=True)


def old_gbm(rows: int, seed: int) -> HistGradientBoostingRegressor:
    """The model ``MixtureRegressor("gbm")`` fitted before it used LightGBM, kept here for the comparison.

    Args:
        rows: training rows (sets the minimum leaf size, as the old model did).
        seed: its random state.
    """
    return HistGradientBoostingRegressor(learning_rate=0.05, max_iter=500, random_state=seed,
                                         min_samples_leaf=min(20, max(2, rows // 20)))


def report(runs_csv: Path, args: argparse.Namespace) -> None:
    """Fit and score the models on the runs of ``runs_csv`` (one row per split and model to ``--out-csv``), and
    print the table of their held-out Spearman.

    Args:
        runs_csv: the runs ``run`` played.
        args: the report's arguments (``--runs``, ``--score``, ``--splits``, ``--test-fraction``, ``--out-csv``).
    """
    runs = pd.read_csv(runs_csv)
    runs = runs[runs["run"] < args.runs].sort_values("run").reset_index(drop=True)
    names = [c for c in runs.columns if c not in ("run", "seed", *SCORES)]
    results = evaluate(runs, names, args.score, args.splits, args.test_fraction)
    upsert_csv(args.out_csv, results, ["split", "model"])
    print(f"Runs: [{runs_csv.name}](docs/results/{runs_csv.name}); per split and model: "
          f"[{args.out_csv.name}](docs/results/{args.out_csv.name}).\n")
    print(f"{len(runs)} runs ({args.preset}, K = {len(names)}), score `{args.score}`, {args.splits} random splits, "
          f"{results['train_runs'].iloc[0]} train / {results['test_runs'].iloc[0]} held out.\n")
    print("| model | held-out Spearman (mean ± std) | min | max |\n|---|---:|---:|---:|")
    for model, values in results.groupby("model", sort=False)["spearman"]:
        print(f"| {model} | {values.mean():.3f} ± {values.std(ddof=1):.3f} | {values.min():.3f} | {values.max():.3f} |")


def evaluate(runs: pd.DataFrame, names: list[str], score: str, num_splits: int, test_fraction: float) -> pd.DataFrame:
    """Held-out Spearman of each model over ``num_splits`` seeded random splits; one row per split and model.

    Args:
        runs: the table of runs.
        names: the weight columns, in the env's domain order.
        score: the score column to predict.
        num_splits: number of random train/test splits (split ``s`` is drawn with seed ``s``).
        test_fraction: share of the runs held out in each split.
    """
    rows = []
    num_test = max(2, round(test_fraction * len(runs)))
    # One thread, as the LightGBM model has (n_jobs=1): HistGradientBoosting's OpenMP threads, spin-waiting
    # on two shared cores, took 64 s for one fit on 96 runs instead of a fraction of a second.
    with threadpool_limits(limits=1):
        for split in range(num_splits):
            order = np.random.default_rng(split).permutation(len(runs))
            test, train = runs.iloc[order[:num_test]], runs.iloc[order[num_test:]]
            results = {
                "lightgbm": MixtureRegressor("gbm", seed=split).fit(train, names, score).rank_correlation(test),
                "ridge": MixtureRegressor("ridge", seed=split).fit(train, names, score).rank_correlation(test),
            }
            hist = old_gbm(len(train), split).fit(train[names].to_numpy(float), train[score].to_numpy(float))
            results["hist_gradient_boosting"] = float(
                spearmanr(hist.predict(test[names].to_numpy(float)), test[score].to_numpy(float)).statistic)
            rows += [{"split": split, "model": model, "train_runs": len(train), "test_runs": len(test),
                      "spearman": value} for model, value in results.items()]
    return pd.DataFrame(rows)


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "regmix_regressor.md"
PAGE_TITLE = "RegMix's regressor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: play the runs; report: fit, score, the table")
    parser.add_argument("--runs", type=int, default=128, help="fixed-mixture episodes in the table")
    parser.add_argument("--seed", type=int, default=0, help="run i has seed SEED + i")
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--score", default="balanced", choices=SCORES, help="the score column to predict")
    parser.add_argument("--splits", type=int, default=10, help="random train/test splits")
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--runs-csv", type=Path, default=None, help="default docs/results/regmix_runs_<preset>.csv")
    parser.add_argument("--out-csv", type=Path, default=RESULTS / "regmix_regressor.csv")
    args = parser.parse_args()
    if args.runs < 8:
        parser.error("--runs must be at least 8: each split needs runs to fit on and runs to rank.")

    runs_csv = args.runs_csv or RESULTS / f"regmix_runs_{args.preset}.csv"
    if args.step == "run":
        play_runs(args.runs, args.seed, args.preset, runs_csv)
        return
    command = shlex.join(["python", "experiments/regmix_regressor/study.py", *sys.argv[1:]])
    publish_report(lambda: report(runs_csv, args), PAGE, PAGE_TITLE, __doc__, __file__, command)


if __name__ == "__main__":
    main()
