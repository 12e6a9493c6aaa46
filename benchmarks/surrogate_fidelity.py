"""Fidelity of surrogate variants on held-out real trajectories: one-step and whole-episode (rollout) errors.

    python benchmarks/surrogate_fidelity.py --trajectories runs/traj-v1-small    # writes the CSV below
    python benchmarks/surrogate_fidelity.py --trajectories runs/traj-v1-small --held-out 0.2

The episodes are split by their position in the dataset (the last ``--held-out`` share held out: a
collection's episodes are independent draws, so this is a random split that a rerun repeats). Each variant
(the grouped model v0's surrogate uses, and the per-domain model v1's uses) is fit on the rest and
scored with ``mixing_gym.surrogate.fidelity`` (one step from recorded states) and
``mixing_gym.envs.surrogate.rollout_fidelity`` (whole episodes replayed from the base model, and the
differences between the better half of the held-out episodes). One row per variant goes to
``docs/results/surrogate_fidelity_<dataset folder name, less a leading "trajectories-">.csv``: the reference
trajectories' (``mixing_gym/reference/trajectories-v1-small`` and ``trajectories-code-v1-small``) are
``surrogate_fidelity_v1-small.csv`` and ``surrogate_fidelity_code-v1-small.csv``.
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
from mixing_gym.surrogate import SurrogateModel, fidelity
from mixing_gym.trajectories import load_trajectories

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trajectories", required=True, help="a dataset folder written by `mixing-gym collect`")
    parser.add_argument("--held-out", type=float, default=0.25, help="share of the episodes held out (the last)")
    parser.add_argument("--top-fraction", type=float, default=0.5, help="the near-best held-out episodes compared")
    args = parser.parse_args()

    dataset = load_trajectories(args.trajectories)
    count = len(dataset.episodes)
    held = max(2, round(args.held_out * count))
    fit_on = dataclasses.replace(dataset, episodes=dataset.episodes[:count - held])
    held_out = dataclasses.replace(dataset, episodes=dataset.episodes[count - held:])
    # An ensemble predicts with its member fit on every episode, the per-domain model: the same errors.
    variants = {"grouped": {"per_domain": False}, "per-domain": {"per_domain": True}}
    rows = []
    for name, options in variants.items():
        start = time.perf_counter()
        model = SurrogateModel.fit(fit_on, **options)
        seconds = time.perf_counter() - start
        one_step, rollout = fidelity(model, held_out), rollout_fidelity(model, held_out, top_fraction=args.top_fraction)
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
    table = pd.DataFrame(rows)
    path = RESULTS / f"surrogate_fidelity_{Path(args.trajectories).name.removeprefix('trajectories-')}.csv"
    table.to_csv(path, index=False)
    print(f"`python benchmarks/surrogate_fidelity.py {shlex.join(sys.argv[1:])}` -> {path.name}\n")
    print(table.round(4).to_markdown(index=False))


if __name__ == "__main__":
    main()
