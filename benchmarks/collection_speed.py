"""Trajectories per hour of ``mixing-gym collect`` with 1 worker and with W workers, on one machine.

    python benchmarks/collection_speed.py                                      # micro, 8 episodes, 1 and 2 workers
    python benchmarks/collection_speed.py --preset small --episodes 4 --workers 1 2

Each row collects the same episodes (episode i depends on the collection seed and i only) into a fresh
temporary dataset; ``collect`` prepares the cache (data, base checkpoint) before its clock starts, so the
figures are episodes played, workers' start-up included. Each worker runs one env at one torch thread.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile

from agents.collect import collect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--space", default="math")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per row")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()

    env_kwargs = {"preset": args.preset, "space": args.space, "cache_dir": args.cache_dir}
    rows = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as output:
            summary = collect(env_kwargs, args.episodes, workers, output, progress=False)
        rows.append((workers, summary.seconds, summary.episodes_per_hour))

    print(f"`python benchmarks/collection_speed.py {shlex.join(sys.argv[1:])}`\n")
    print("| workers | episodes | seconds | episodes/hour | x 1 worker |\n|---:|---:|---:|---:|---:|")
    one_worker = next((per_hour for workers, _, per_hour in rows if workers == 1), None)
    for workers, seconds, per_hour in rows:
        speedup = f"{per_hour / one_worker:.2f}x" if one_worker else "n/a"
        print(f"| {workers} | {args.episodes} | {seconds:.0f} | {per_hour:,.0f} | {speedup} |")


if __name__ == "__main__":
    main()
