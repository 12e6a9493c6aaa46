"""One row per episode of a trajectory dataset: its policy, env seed, mean target share and final scores.

    python experiments/collection_summary/study.py run --trajectories mixing_gym/reference/trajectories-v1-small
    python experiments/collection_summary/study.py report --trajectories mixing_gym/reference/trajectories-v1-small

``run`` writes ``docs/results/collection_<dataset folder name, less a leading "trajectories-">.csv``
(``collection_v1-small.csv`` for the reference trajectories); ``report`` prints the figures the docs quote from
it: the range of the final balanced scores, how many episodes beat a reference score, and the mean and best by
policy kind (the label before its parameters), and writes them to the study's page,
``docs/results/collection_summary.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mixing_gym.mdp import balanced_objective
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import upsert_csv
from mixing_gym.trajectories import load_trajectories

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def results_csv(trajectories: str) -> Path:
    """Where the rows of a dataset go: named by its folder, less a leading ``trajectories-``.

    Args:
        trajectories: the dataset folder.
    """
    return RESULTS / f"collection_{Path(trajectories).name.removeprefix('trajectories-')}.csv"


def summarise(trajectories: str) -> pd.DataFrame:
    """One row per episode of the dataset: policy, its kind, env seed, mean target share and final scores.

    Args:
        trajectories: a dataset folder written by ``mixing-gym collect``.
    """
    dataset = load_trajectories(trajectories)
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
    return pd.DataFrame(rows)


def report(path: Path, references: list[float]) -> None:
    """Print a dataset's figures from its CSV: the range of the final balanced scores, how many episodes beat each
    reference score, and the count, mean and best of the final balanced scores by policy kind.

    Args:
        path: the CSV ``run`` wrote.
        references: balanced scores to count the episodes above.
    """
    table = pd.read_csv(path)
    balanced = table["balanced"]
    print(f"Rows: [{path.name}](docs/results/{path.name}), one per episode.\n")
    print(f"{len(table)} episodes; final balanced {balanced.min():+.4f} to {balanced.max():+.4f} "
          f"(median {balanced.median():+.4f}).\n")
    for reference in references:
        print(f"- above {reference:+.4f}: {(balanced > reference).sum()}")
    print("\nFinal balanced score by policy kind:\n")
    print(table.groupby("kind")["balanced"].agg(["count", "mean", "max"]).round(4).to_markdown())


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "collection_summary.md"
PAGE_TITLE = "Trajectory collections"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: summarise the episodes; report: the figures")
    parser.add_argument("--trajectories", required=True, help="a dataset folder written by `mixing-gym collect`")
    parser.add_argument("--references", type=float, nargs="*", default=[0.0669, 0.0836],
                        help="balanced scores to count the episodes above (default: the v1 card's best fixed "
                             "heuristic and the search's best)")
    args = parser.parse_args()
    path = results_csv(args.trajectories)
    if args.step == "run":
        upsert_csv(path, summarise(args.trajectories), ["episode"])
        return
    command = shlex.join(["python", "experiments/collection_summary/study.py", *sys.argv[1:]])
    publish_report(lambda: report(path, args.references), PAGE, PAGE_TITLE, __doc__, __file__, command)


if __name__ == "__main__":
    main()
