"""Steps per second of ``DataMixingSurrogate-v0`` on one core: one env through ``gym.make``, and the
vector env (one numpy call per step for all N envs) at several N.

    python benchmarks/surrogate_speed.py --surrogate runs/surrogate          # a saved SurrogateModel
    python benchmarks/surrogate_speed.py --trajectories runs/trajectories    # fit one on recorded episodes
    python benchmarks/surrogate_speed.py --num-envs 1 64 1024 --seconds 3    # without either: records
                                                                             # 6 micro episodes first
    python benchmarks/surrogate_speed.py --surrogate mixing_gym/reference/surrogate-v1-small \
        --num-envs 1 256 4096 --seconds 3 --csv docs/results/surrogate_speed_v1.csv   # the README's figures

The speed depends on the numbers of domains and benchmarks, not on the fitted values. Numpy's BLAS
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


def single_env_steps_per_second(surrogate: SurrogateModel, seconds: float) -> float:
    env = gym.make("DataMixingSurrogate-v0", surrogate=surrogate)
    actions = [env.action_space.sample() for _ in range(1024)]
    env.reset(seed=0)
    env.step(actions[0])  # loads (or compiles) the step's kernels before the clock starts
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for action in actions:
            if env.step(action)[2]:
                env.reset()
        steps += len(actions)
    return steps / (time.perf_counter() - start)


def vector_env_steps_per_second(surrogate: SurrogateModel, num_envs: int, seconds: float) -> float:
    env = gym.make_vec("DataMixingSurrogate-v0", num_envs=num_envs, surrogate=surrogate)
    actions = [env.action_space.sample() for _ in range(16)]
    env.reset(seed=0)
    env.step(actions[0])
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for action in actions:
            env.step(action)
        calls += len(actions)
    return num_envs * calls / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--surrogate", help="folder of a saved SurrogateModel")
    source.add_argument("--trajectories", help="recorded trajectories to fit a surrogate on")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 16, 256, 1024, 4096])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per configuration")
    parser.add_argument("--csv", default=None, help="also write the rows (env, envs, steps_per_second) here")
    args = parser.parse_args(argv)

    if args.surrogate:
        surrogate = SurrogateModel.load(args.surrogate)
    else:
        surrogate = SurrogateModel.fit(args.trajectories or record_micro_episodes(episodes=6, num_steps=4))

    print(f"`python benchmarks/surrogate_speed.py {shlex.join(sys.argv[1:] if argv is None else argv)}` "
          f"(one core; K={surrogate.num_domains} domains, B={surrogate.num_benchmarks} benchmarks, "
          f"{surrogate.layout.num_steps} steps per episode)\n")
    print("| env | envs | steps/s |\n|---|---:|---:|")
    rows = [("gym.make (single env, wrappers included)", 1, single_env_steps_per_second(surrogate, args.seconds))]
    print(f"| {rows[0][0]} | 1 | {rows[0][2]:,.0f} |")
    for num_envs in args.num_envs:
        rows.append(("gym.make_vec (vector entry point)", num_envs,
                     vector_env_steps_per_second(surrogate, num_envs, args.seconds)))
        print(f"| {rows[-1][0]} | {num_envs} | {rows[-1][2]:,.0f} |")
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["env", "envs", "steps_per_second", "domains", "benchmarks"])
            writer.writerows((*row, surrogate.num_domains, surrogate.num_benchmarks) for row in rows)


if __name__ == "__main__":
    main()
