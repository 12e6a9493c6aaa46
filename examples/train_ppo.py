"""Train the reference PPO agent on DataMixing-v1 (--env: or v0), resumable; compare it with baselines.

    python examples/train_ppo.py --preset micro --timesteps 2048 --envs 2 --log-dir runs/ppo-micro
    python examples/train_ppo.py --preset micro --timesteps 4096 --log-dir runs/ppo-micro \\
        --resume runs/ppo-micro/checkpoints/ppo_1600_steps.zip         # continue an interrupted run
    mixing-gym evaluate --preset micro --agents random,uniform,ppo --ppo-model runs/ppo-micro/ppo_final.zip

Checkpoints go to ``<log-dir>/checkpoints``, SB3's training log to ``<log-dir>/progress.csv`` (and
TensorBoard events when ``tensorboard`` is installed), episode returns to ``<log-dir>/monitor``.
"""

from __future__ import annotations

import argparse

from agents.ppo import FINAL_MODEL, train_ppo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="micro", help="proxy preset (default: micro)")
    parser.add_argument("--env", default="DataMixing-v1", choices=("DataMixing-v1", "DataMixing-v0"))
    parser.add_argument("--space", default=None,
                        help="domain space: math-v1, math, code-v1, code or a YAML file (default: the env's)")
    parser.add_argument("--cache-dir", default=None, help="cache root (default: $MIXING_GYM_CACHE or ~/.cache/...)")
    parser.add_argument("--benchmarks", default="bpb", choices=("bpb", "all"), help="env benchmarks (default: bpb)")
    parser.add_argument("--reward", default="balanced", help="the env's reward (default: balanced)")
    parser.add_argument("--timesteps", type=int, default=2048, help="env steps in total (default: 2048)")
    parser.add_argument("--envs", type=int, default=2, help="envs in subprocesses (default: 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", default="runs/ppo", help="checkpoints, logs, final model (default: runs/ppo)")
    parser.add_argument("--checkpoint-freq", type=int, default=None, help="env steps between checkpoints "
                                                                          "(default: 10 rollouts)")
    parser.add_argument("--resume", default=None, help="a checkpoint zip to continue from")
    args = parser.parse_args()

    env_kwargs = {"space": args.space, "cache_dir": args.cache_dir, "benchmarks": args.benchmarks,
                  "reward": args.reward}
    model = train_ppo(args.preset, args.timesteps, args.envs, args.seed, args.log_dir, args.checkpoint_freq,
                      resume_from=args.resume, env_kwargs=env_kwargs, env_id=f"mixing_gym:{args.env}")
    print(f"trained {model.num_timesteps} steps; final model: {args.log_dir}/{FINAL_MODEL}")


if __name__ == "__main__":
    main()
