"""Steps per second of ``DataMixingSurrogate-v0`` on one core: one env through ``gym.make``, and the
vector env (one numpy call per step for all N envs) at several N.

    python benchmarks/surrogate_speed.py --surrogate runs/surrogate          # a saved SurrogateModel
    python benchmarks/surrogate_speed.py --trajectories runs/trajectories    # fit one on recorded episodes
    python benchmarks/surrogate_speed.py --num-envs 1 64 1024 --windows 3    # without either: records
                                                                             # 6 micro episodes first
    python benchmarks/surrogate_speed.py --surrogate mixing_gym/reference/surrogate-v1-small \
        --num-envs 1 16 256 4096 16384 --windows 7 --csv docs/results/surrogate_speed_v1.csv   # the README's
    python benchmarks/surrogate_speed.py --surrogate mixing_gym/reference/surrogate-v2-small --penalty 0.5 \
        --num-envs 1 16 256 4096 16384 --windows 7 --csv docs/results/surrogate_speed_v2.csv   # with the penalty

Each configuration is measured in ``--windows`` windows of ``--seconds``; the table gives their median, min and
max, the CSV one row per window.

The speed depends on the numbers of domains and benchmarks, not on the fitted values; ``--penalty`` (any value
above 0) steps the ensemble's other members too, as ``DataMixingSurrogate-v2`` does by default. Numpy's BLAS
threads are pinned to one before numpy loads, so the figures are for a single core.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # one core: set before numpy starts its thread pools

import argparse
import csv
import shlex
import sys
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import mixing_gym  # noqa: F401  (registers the envs)
from mixing_gym.surrogate import SurrogateModel
from mixing_gym.trajectories import Trajectory, TrajectoryDataset


def record_micro_episodes(episodes: int, num_steps: int, seed: int = 0) -> TrajectoryDataset:
    """Random Dirichlet mixtures on the real micro env (prepares its cache if missing; about a minute)."""
    import torch

    torch.set_num_threads(1)
    env = gym.make("DataMixing-v0", preset="micro", num_steps=num_steps, action_mode="weights")
    unwrapped = env.unwrapped
    rng = np.random.default_rng(seed)
    recorded = []
    for number in range(episodes):
        observations, actions, rewards, ends = [env.reset(seed=seed + number)[0]], [], [], []
        for _ in range(num_steps):
            actions.append(rng.dirichlet(np.ones(unwrapped.num_domains)).astype(np.float32))
            observation, reward, terminated, _, _ = env.step(actions[-1])
            observations.append(observation)
            rewards.append(reward)
            ends.append(terminated)
        recorded.append(Trajectory(np.array(observations), np.array(actions), np.array(rewards), np.array(ends),
                                   np.zeros(num_steps, bool), seed + number, "dirichlet(alpha=1)"))
    env.close()
    return TrajectoryDataset("DataMixing-v0", {"preset": "micro", "num_steps": num_steps, "action_mode": "weights"},
                             unwrapped.layout, recorded)


def _windows(run: Callable[[], int], windows: int, seconds: float) -> list[float]:
    """Items per second in each of ``windows`` consecutive windows of ``seconds``; ``run`` does one batch and
    returns how many items it did. Several short windows rather than one long one, because this VM's speed
    drifts by about 20% within a process: their median and range say how much of a figure is the machine."""
    rates = []
    for _ in range(windows):
        items, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            items += run()
        rates.append(items / (time.perf_counter() - start))
    return rates


def single_env_steps_per_second(surrogate: SurrogateModel, windows: int, seconds: float,
                                penalty: float = 0.0) -> list[float]:
    env = gym.make("DataMixingSurrogate-v0", surrogate=surrogate, penalty=penalty)
    actions = [env.action_space.sample() for _ in range(1024)]
    env.reset(seed=0)
    env.step(actions[0])  # loads (or compiles) the step's kernels before the clock starts

    def run() -> int:
        for action in actions:
            if env.step(action)[2]:
                env.reset()
        return len(actions)

    return _windows(run, windows, seconds)


def vector_env_steps_per_second(surrogate: SurrogateModel, num_envs: int, windows: int,
                                seconds: float, penalty: float = 0.0) -> list[float]:
    env = gym.make_vec("DataMixingSurrogate-v0", num_envs=num_envs, surrogate=surrogate, penalty=penalty)
    actions = [env.action_space.sample() for _ in range(16)]
    env.reset(seed=0)
    env.step(actions[0])

    def run() -> int:
        for action in actions:
            env.step(action)
        return num_envs * len(actions)

    return _windows(run, windows, seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--surrogate", help="folder of a saved SurrogateModel")
    source.add_argument("--trajectories", help="recorded trajectories to fit a surrogate on")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 16, 256, 1024, 4096])
    parser.add_argument("--windows", type=int, default=5, help="measuring windows per configuration")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each window")
    parser.add_argument("--penalty", type=float, default=0.0,
                        help="MOPO's penalty weight (above 0: every ensemble member is stepped; default 0)")
    parser.add_argument("--csv", default=None, help="also write one row per window (env, envs, window, "
                                                    "steps_per_second, domains, benchmarks) here")
    args = parser.parse_args(argv)

    if args.surrogate:
        surrogate = SurrogateModel.load(args.surrogate)
    else:
        surrogate = SurrogateModel.fit(args.trajectories or record_micro_episodes(episodes=6, num_steps=4))

    print(f"`python benchmarks/surrogate_speed.py {shlex.join(sys.argv[1:] if argv is None else argv)}` "
          f"(one core; K={surrogate.num_domains} domains, B={surrogate.num_benchmarks} benchmarks, "
          f"{surrogate.layout.num_steps} steps per episode; {args.windows} windows of {args.seconds:g} s each)\n")
    print("| env | envs | steps/s, median | min | max |\n|---|---:|---:|---:|---:|")
    configurations = [("gym.make (single env, wrappers included)", 1,
                       lambda: single_env_steps_per_second(surrogate, args.windows, args.seconds, args.penalty))]
    configurations += [("gym.make_vec (vector entry point)", num_envs,
                        lambda n=num_envs: vector_env_steps_per_second(surrogate, n, args.windows, args.seconds,
                                                                       args.penalty))
                       for num_envs in args.num_envs]
    rows = []
    for name, num_envs, measure in configurations:
        rates = measure()
        rows += [(name, num_envs, window, rate, surrogate.num_domains, surrogate.num_benchmarks)
                 for window, rate in enumerate(rates)]
        print(f"| {name} | {num_envs} | {np.median(rates):,.0f} | {min(rates):,.0f} | {max(rates):,.0f} |")
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["env", "envs", "window", "steps_per_second", "domains", "benchmarks"])
            writer.writerows(rows)

if __name__ == "__main__":
    main()
