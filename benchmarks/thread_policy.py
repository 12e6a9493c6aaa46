"""Step time of ``DataMixing-v0`` by torch thread count, on idle cores and with one core kept busy.

    python benchmarks/thread_policy.py                          # micro, 1 and 2 threads, idle and busy
    python benchmarks/thread_policy.py --preset small --steps 3

Each row runs in a fresh process: ``gym.make("DataMixing-v0", preset=..., torch_threads=T)``, a reset, one
warm-up step, then the mean of ``--steps`` timed steps. "busy" rows run a second process that spins on
one core for the whole measurement, as another job on a shared machine does. The figures justify the
project's thread policy (one torch thread per env process unless told otherwise): with a core taken,
extra threads wait on each other. One row per measurement goes to ``--csv``.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results" / "thread_policy.csv"


def spin(stop) -> None:
    """Keep one core busy until ``stop`` is set."""
    while not stop.is_set():
        pass


def measure(preset: str, threads: int, steps: int, queue) -> None:
    """In a fresh process: mean seconds of ``steps`` env steps at ``threads`` torch threads."""
    import gymnasium as gym

    import mixing_gym  # noqa: F401  (registers DataMixing-v0)

    env = gym.make("DataMixing-v0", preset=preset, torch_threads=threads)
    env.reset(seed=0)
    env.step(env.action_space.sample())  # warm-up
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        _, _, terminated, _, _ = env.step(env.action_space.sample())
        seconds.append(time.perf_counter() - start)
        if terminated:
            env.reset(seed=0)
    env.close()
    queue.put(sum(seconds) / len(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per row")
    parser.add_argument("--csv", type=Path, default=RESULTS, help=f"one row per measurement (default: {RESULTS})")
    args = parser.parse_args()

    from mixing_gym.envs import prepare_env

    prepare_env("DataMixing-v0", {"preset": args.preset})  # outside the clock
    context = multiprocessing.get_context("spawn")
    rows = []
    for load in ("idle", "busy"):
        for threads in args.threads:
            stop = context.Event()
            spinner = context.Process(target=spin, args=(stop,)) if load == "busy" else None
            if spinner is not None:
                spinner.start()
            queue = context.Queue()
            worker = context.Process(target=measure, args=(args.preset, threads, args.steps, queue))
            worker.start()
            step_seconds = queue.get()
            worker.join()
            if spinner is not None:
                stop.set()
                spinner.join()
            rows.append({"preset": args.preset, "load": load, "torch_threads": threads, "steps": args.steps,
                         "step_seconds": round(step_seconds, 4)})

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"`python benchmarks/thread_policy.py {shlex.join(sys.argv[1:])}` (rows in {args.csv})\n")
    print("| cores | torch threads | step s | x 1 thread |\n|---|---:|---:|---:|")
    for row in rows:
        one = next(r["step_seconds"] for r in rows if r["load"] == row["load"] and r["torch_threads"] == 1)
        cores = "idle" if row["load"] == "idle" else "one core busy"
        print(f"| {cores} | {row['torch_threads']} | {row['step_seconds']:.3f} | {row['step_seconds'] / one:.2f}x |")


if __name__ == "__main__":
    main()
