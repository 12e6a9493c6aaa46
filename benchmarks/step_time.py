"""Cost of an environment step and the proxy's training speed next to the machine's matmul peak.

Prints, measured in this run (the machine is shared, so compare ratios, not absolute figures):
  * the matmul peak in fp32 and bf16 at 2048x2048;
  * training tokens/s and model FLOP/s (6 x parameters x tokens) of each preset, and the ratio to the peak;
  * a DataMixing-v0 step split into sampling, training, scoring and overhead.

    python benchmarks/step_time.py --presets micro small --steps 4
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

import mixing_gym  # noqa: F401  (registers DataMixing-v0)


def matmul_peak(dtype: torch.dtype, size: int = 2048, seconds: float = 2.0) -> float:
    """FLOP/s of repeated ``size x size`` matrix products."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["micro", "small"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--benchmarks", default="all", choices=("all", "bpb"), help="the env's benchmark set")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()

    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"`python benchmarks/step_time.py --presets {' '.join(args.presets)} --steps {args.steps} "
          f"--benchmarks {args.benchmarks}`"
          f" ({torch.get_num_threads()} torch threads)\n")
    print(f"matmul peak 2048x2048: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s\n")
    print("| preset | params | precision | train tokens/s | model GFLOP/s | / bf16 peak | sample s | train s "
          "| score s | overhead s | step s | score+overhead share |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets:
        env = gym.make("DataMixing-v0", preset=preset, benchmarks=args.benchmarks, cache_dir=args.cache_dir)
        unwrapped = env.unwrapped
        env.reset(seed=0)
        env.step(env.action_space.sample())  # warm-up: first-call allocations and lazy imports
        phases = {"sample": [], "train": [], "score": [], "overhead": [], "step": []}
        for _ in range(args.steps):
            start = time.perf_counter()
            _, _, terminated, _, _ = env.step(env.action_space.sample())
            total = time.perf_counter() - start
            timings = unwrapped.last_step_timings
            for phase in ("sample", "train", "score"):
                phases[phase].append(timings[phase])
            phases["overhead"].append(total - timings["total"])
            phases["step"].append(total)
            if terminated:
                env.reset()
        mean = {phase: float(np.mean(values)) for phase, values in phases.items()}
        tokens_per_second = unwrapped.run.preset.tokens_per_step / mean["train"]
        flops = 6 * unwrapped.run.num_parameters * tokens_per_second
        share = (mean["score"] + mean["overhead"]) / mean["step"]
        print(f"| {preset} | {unwrapped.run.num_parameters / 1e6:.2f}M | {unwrapped.run.precision} "
              f"| {tokens_per_second:,.0f} | {flops / 1e9:.1f} | {flops / peaks['bf16']:.0%} | {mean['sample']:.3f} "
              f"| {mean['train']:.2f} | {mean['score']:.2f} | {mean['overhead']:.3f} | {mean['step']:.2f} | {share:.0%} |")
        env.close()


if __name__ == "__main__":
    main()
