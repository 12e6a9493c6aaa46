"""One row per episode of a trajectory dataset: its policy, env seed, mean target share and final scores.

    python benchmarks/collection_summary.py --trajectories mixing_gym/reference/trajectories-v1-small

Writes ``docs/results/collection_<dataset folder name>.csv`` and prints the figures the README quotes: the
range of the final balanced scores, how many episodes beat a reference score, and the mean and best by
policy kind (the label before its parameters).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mixing_gym.mdp import balanced_objective
from mixing_gym.trajectories import load_trajectories

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trajectories", required=True, help="a dataset folder written by `mixing-gym collect`")
    parser.add_argument("--references", type=float, nargs="*", default=[0.0669, 0.0836],
                        help="balanced scores to count the episodes above (default: the v1 card's best fixed "
                             "heuristic and the search's best)")
    args = parser.parse_args()

    dataset = load_trajectories(args.trajectories)
    layout = dataset.layout
    rows = []
    for index, episode in enumerate(dataset.episodes):
        observations = np.asarray(episode.observations, dtype=np.float64)
        source, target = observations[-1, layout.aggregate_slice].tolist()
        rows.append({"episode": index, "policy": episode.policy, "kind": episode.policy.split("(")[0].split("+")[0],
                     "seed": episode.seed,
                     "target_share": float(observations[1:, layout.weight_slice][:, layout.target_mask].sum(1).mean()),
                     "source": source, "target": target,
                     "balanced": balanced_objective({"source_score": source, "target_score": target})})
    table = pd.DataFrame(rows)
    path = RESULTS / f"collection_{Path(args.trajectories).name}.csv"
    table.to_csv(path, index=False)
    balanced = table["balanced"]
    print(f"`python benchmarks/collection_summary.py {shlex.join(sys.argv[1:])}` -> {path.name}\n")
    print(f"{len(table)} episodes; final balanced {balanced.min():+.4f} to {balanced.max():+.4f} "
          f"(median {balanced.median():+.4f})")
    for reference in args.references:
        print(f"above {reference:+.4f}: {(balanced > reference).sum()}")
    print(table.groupby("kind")["balanced"].agg(["count", "mean", "max"]).round(4).to_markdown())


if __name__ == "__main__":
    main()
