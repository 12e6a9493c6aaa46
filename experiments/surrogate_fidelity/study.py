"""Fidelity of surrogate variants on held-out real trajectories: one-step and whole-episode (rollout) errors.

    python experiments/surrogate_fidelity/study.py run --trajectories mixing_gym/reference/trajectories-v1-small
    python experiments/surrogate_fidelity/study.py run --trajectories runs/traj-v1-small --held-out 0.2
    python experiments/surrogate_fidelity/study.py report --trajectories mixing_gym/reference/trajectories-v1-small

The episodes are split by their position in the dataset (the last ``--held-out`` share held out: a
collection's episodes are independent draws, so this is a random split that a rerun repeats). Each variant
(the grouped model v0's surrogate uses, and the per-domain model v1's uses) is fit on the rest and
scored with ``mixing_gym.surrogate.fidelity`` (one step from recorded states) and
``mixing_gym.envs.surrogate.rollout_fidelity`` (whole episodes replayed from the base model, and the
differences between the better half of the held-out episodes). ``run`` writes one row per variant to
``docs/results/surrogate_fidelity_<dataset folder name, less a leading "trajectories-">.csv``: the reference
trajectories' (``mixing_gym/reference/trajectories-v1-small`` and ``trajectories-code-v1-small``) are
``surrogate_fidelity_v1-small.csv`` and ``surrogate_fidelity_code-v1-small.csv``; ``report`` prints it and writes it
to the study's page, ``docs/results/surrogate_fidelity.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

import pandas as pd

from mixing_gym.envs.surrogate import rollout_fidelity
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import upsert_csv
from mixing_gym.surrogate import SurrogateModel, fidelity
from mixing_gym.trajectories import load_trajectories

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
#: The variants compared, by name: ``SurrogateModel.fit``'s options. An ensemble predicts with its member fit on
#: every episode, the per-domain model: the same errors.
VARIANTS = {"grouped": {"per_domain": False}, "per-domain": {"per_domain": True}}


def results_csv(trajectories: str) -> Path:
    """Where the rows of a dataset go: named by its folder, less a leading ``trajectories-``.

    Args:
        trajectories: the dataset folder.
    """
    return RESULTS / f"surrogate_fidelity_{Path(trajectories).name.removeprefix('trajectories-')}.csv"


def measure(trajectories: str, held_out: float, top_fraction: float) -> pd.DataFrame:
    """One row per variant: fit on the first episodes, scored on the held-out last ones.

    Args:
        trajectories: a dataset folder written by ``mixing-gym collect``.
        held_out: the share of the episodes held out (the last ones).
        top_fraction: the near-best held-out episodes compared.
    """
    dataset = load_trajectories(trajectories)
    count = len(dataset.episodes)
    held = max(2, round(held_out * count))
    fit_on = dataclasses.replace(dataset, episodes=dataset.episodes[:count - held])
    held_back = dataclasses.replace(dataset, episodes=dataset.episodes[count - held:])
    rows = []
    for name, options in VARIANTS.items():
        start = time.perf_counter()
        model = SurrogateModel.fit(fit_on, **options)
        seconds = time.perf_counter() - start
        one_step, rollout = fidelity(model, held_back), rollout_fidelity(model, held_back, top_fraction=top_fraction)
        rows.append({"variant": name, "fit_episodes": count - held, "held_out_episodes": held,
                     "fit_seconds": round(seconds, 2),
                     "one_step_r2_source": one_step["source_score"]["r2"],
                     "one_step_r2_target": one_step["target_score"]["r2"],
                     "rollout_rmse_source": rollout["step_rmse"]["source_score"],
                     "rollout_rmse_target": rollout["step_rmse"]["target_score"],
                     "final_rmse": rollout["final"]["rmse"], "final_r2": rollout["final"]["r2"],
                     "final_spearman": rollout["final"]["spearman"],
                     "near_best_pairs": rollout["near_best"]["pairs"],
                     "near_best_difference_rmse": rollout["near_best"]["difference_rmse"],
                     "near_best_order_agreement": rollout["near_best"]["order_agreement"]})
    return pd.DataFrame(rows)


def report(path: Path) -> None:
    """Print a dataset's fidelity table from its CSV: the headline errors per variant, then every column.

    Args:
        path: the CSV ``run`` wrote.
    """
    table = pd.read_csv(path)
    first = table.iloc[0]
    print(f"Rows: [{path.name}](docs/results/{path.name}), one per variant: fit on the first "
          f"{first['fit_episodes']} episodes, scored on the last {first['held_out_episodes']}.\n")
    print("| model | one-step R^2 source / target | rollout RMSE source / target | final objective R^2 / Spearman | "
          "near-best episodes: difference RMSE, pairs ordered right |\n|---|---|---|---|---|")
    for row in table.to_dict("records"):
        print(f"| {row['variant']} | {row['one_step_r2_source']:.2f} / {row['one_step_r2_target']:.2f} | "
              f"{row['rollout_rmse_source']:.4f} / {row['rollout_rmse_target']:.4f} | {row['final_r2']:.2f} / "
              f"{row['final_spearman']:.2f} | {row['near_best_difference_rmse']:.4f}, "
              f"{row['near_best_order_agreement']:.0%} of {row['near_best_pairs']} |")
    print("\nEvery column:\n")
    print(table.round(4).to_markdown(index=False))


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "surrogate_fidelity.md"
PAGE_TITLE = "Surrogate fidelity"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: fit and score the variants; report: the table")
    parser.add_argument("--trajectories", required=True, help="a dataset folder written by `mixing-gym collect`")
    parser.add_argument("--held-out", type=float, default=0.25, help="share of the episodes held out (the last)")
    parser.add_argument("--top-fraction", type=float, default=0.5, help="the near-best held-out episodes compared")
    args = parser.parse_args()
    path = results_csv(args.trajectories)
    if args.step == "run":
        upsert_csv(path, measure(args.trajectories, args.held_out, args.top_fraction), ["variant"])
        return
    command = shlex.join(["python", "experiments/surrogate_fidelity/study.py", *sys.argv[1:]])
    publish_report(lambda: report(path), PAGE, PAGE_TITLE, __doc__, __file__, command)


if __name__ == "__main__":
    main()
