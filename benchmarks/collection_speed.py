"""Trajectories per hour of ``mixing-gym collect``: the process pool and a local Ray, 1 and W workers, per preset.

    python benchmarks/collection_speed.py                     # DataMixing-v1, micro and small, both backends, 1 and 2
    python benchmarks/collection_speed.py --presets micro --backends process --workers 1 2 --episodes 8

Each row collects the same episodes (episode i depends on the collection seed and i only) into a fresh
temporary dataset; ``collect`` prepares the cache (data, base checkpoint) before its clock starts, so the
figures are episodes played, the workers' start-up included (and, with Ray, starting the local Ray). Each
worker runs one env at one torch thread. One row per measurement goes to ``--csv``
(``docs/results/collection_speed.csv``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import pandas as pd

from agents.backends import BACKENDS, Backend
from agents.collect import collect
from mixing_gym import DEFAULT_ENV_ID, REAL_ENV_IDS

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results" / "collection_speed.csv"
#: Episodes per row by preset: enough that each worker plays two or more (small: about a minute each).
EPISODES = {"micro": 8, "small": 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=DEFAULT_ENV_ID, choices=REAL_ENV_IDS)
    parser.add_argument("--presets", nargs="+", default=["micro", "small"])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--episodes", type=int, default=None, help=f"episodes per row (default: {EPISODES})")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--csv", type=Path, default=RESULTS, help="where the rows go (default: %(default)s)")
    args = parser.parse_args()

    command = f"python benchmarks/collection_speed.py {shlex.join(sys.argv[1:])}".strip()
    rows = []
    for preset in args.presets:
        episodes = args.episodes or EPISODES.get(preset, 4)
        for backend in args.backends:
            for workers in args.workers:
                with tempfile.TemporaryDirectory() as output:
                    summary = collect({"preset": preset, "cache_dir": args.cache_dir}, episodes, output=output,
                                      progress=False, env_id=args.env, backend=Backend(backend, workers))
                rows.append({"env": args.env, "preset": preset, "backend": backend, "workers": workers,
                             "episodes": episodes, "seconds": round(summary.seconds, 1),
                             "episodes_per_hour": round(summary.episodes_per_hour, 1), "command": command})
                print(f"  {preset} {backend} {workers}: {summary.episodes_per_hour:,.0f} per hour", file=sys.stderr)

    frame = pd.DataFrame(rows)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.csv, index=False)
    print(f"`{command}` ({args.env}; rows in {args.csv.name})\n")
    print("| preset | backend | workers | episodes | seconds | episodes/hour | x 1 worker |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        one = frame[(frame["preset"] == row["preset"]) & (frame["backend"] == row["backend"])
                    & (frame["workers"] == 1)]["episodes_per_hour"]
        speedup = f"{row['episodes_per_hour'] / one.iloc[0]:.2f}x" if len(one) else "n/a"
        print(f"| {row['preset']} | {row['backend']} | {row['workers']} | {row['episodes']} | {row['seconds']:.0f} | "
              f"{row['episodes_per_hour']:,.0f} | {speedup} |")


if __name__ == "__main__":
    main()
