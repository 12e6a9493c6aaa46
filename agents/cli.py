"""The ``mixing-gym`` command line with the agents: ``mixing_gym.cli``'s commands plus ``evaluate`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixing_gym import cli as base_cli

if TYPE_CHECKING:
    from agents.base import Agent
    from agents.harness import Comparison

DEFAULT_AGENTS = "uniform,source_only,target_only,fixed_ratio,linear_schedule,odm,doremi"
DEMO_AGENTS = "target_only,fixed_ratio,odm,doremi"
DEMO_HELP = """run baselines and a short PPO run on the default env (small proxy, math space) and compare them.
Takes about 9 minutes on 2 shared CPU cores once `small` is prepared (PPO trains 16 steps in 2
workers, about 3 minutes; then 5 evaluation episodes of 8 steps, about 70 s each), plus 5-8 minutes on
the first run to prepare the data and pretrain the base checkpoint."""


COLLECT_HELP = """record episodes of random mixture policies (Dirichlet draws, field splits, perturbed baselines) in
worker processes into a Minari dataset; each finished episode is committed atomically, so a killed
collection keeps what it wrote and `--resume` continues it. --seed seeds the collection."""


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"preset": args.preset, "space": args.space, "cache_dir": args.cache_dir,
            "data_config": base_cli.data_config_from_args(args), "benchmarks": args.benchmarks, "reward": args.reward,
            "torch_threads": args.torch_threads}


def _build_agents(names: list[str], env_kwargs: dict[str, Any], output: str | Path, seed: int,
                  ppo_model: str | None = None, regmix_runs: int = 32,
                  dma_model: str | None = None) -> dict[str, Agent]:
    """The named agents, RegMix trained (its proxy runs cached in ``output``), PPO loaded from ``ppo_model`` and
    the offline Data Mixing Agent from ``dma_model``."""
    import gymnasium as gym

    from agents.registry import AGENTS

    unknown = [name for name in names if name not in AGENTS]
    if unknown:
        raise KeyError(f"Unknown agents {unknown}; known: {sorted(AGENTS)}.")
    agents = {}
    for name in names:
        if name == "ppo":
            if not ppo_model:
                raise ValueError("Agent 'ppo' needs --ppo-model PATH (a zip saved by examples/train_ppo.py).")
            agents[name] = AGENTS[name](ppo_model)
        elif name == "dma":
            if not dma_model:
                raise ValueError("Agent 'dma' needs --dma-model DIR (saved by examples/train_offline_agent.py).")
            agents[name] = AGENTS[name](dma_model)
        elif name == "regmix":
            env = gym.make("DataMixing-v0", **env_kwargs)
            try:
                agents[name] = AGENTS[name]().learn(env, num_runs=regmix_runs, seed=seed,
                                                    table_path=Path(output) / "regmix_runs.csv")
            finally:
                env.close()
        else:
            agents[name] = AGENTS[name]()
    return agents


def _report(comparison: Comparison) -> None:
    print((comparison.output_dir / "results.md").read_text())
    print(f"{comparison.new_episodes} new episodes; results and plots in {comparison.output_dir}/:")
    for name in ("results.csv", "results.md", "mixtures.png", "scores.png", "frontier.png"):
        print(f"  {comparison.output_dir / name}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from agents.harness import evaluate_agents

    env_kwargs = _env_kwargs(args)
    names = [name.strip() for name in args.agents.split(",") if name.strip()]
    agents = _build_agents(names, env_kwargs, args.output, args.seed, args.ppo_model, args.regmix_runs,
                           args.dma_model)
    _report(evaluate_agents(agents, args.seeds, env_kwargs, args.output))


def cmd_demo(args: argparse.Namespace) -> None:
    from agents.harness import evaluate_agents
    from agents.ppo import FINAL_MODEL, train_ppo
    from mixing_gym.engine import prepare_for_env

    output = Path(args.output)
    env_kwargs = _env_kwargs(args)
    prepare_for_env(env_kwargs)
    model_path = output / "ppo" / FINAL_MODEL
    if not model_path.exists():
        print(f"training PPO for {args.ppo_timesteps} steps in 2 envs ...", flush=True)
        train_ppo(args.preset, total_timesteps=args.ppo_timesteps, n_envs=2, seed=args.seed, log_dir=output / "ppo",
                  env_kwargs={k: v for k, v in env_kwargs.items() if k != "preset"}, verbose=0)
    agents = _build_agents([*DEMO_AGENTS.split(","), "ppo"], env_kwargs, output, args.seed, str(model_path))
    _report(evaluate_agents(agents, args.seeds, env_kwargs, output))


def cmd_collect(args: argparse.Namespace) -> None:
    from agents.collect import collect

    env_kwargs = _env_kwargs(args)
    if args.num_steps is not None:
        env_kwargs["num_steps"] = args.num_steps
    summary = collect(env_kwargs, args.episodes, args.workers, args.output, args.seed, args.resume)
    print(f"{summary.path} holds {summary.episodes} episodes; this run played {summary.new_episodes} in "
          f"{summary.seconds:.0f} s with {summary.workers} workers ({summary.episodes_per_hour:.0f} per hour).")
    print("Read it with mixing_gym.trajectories.load_trajectories (or to_hf_dataset, minari_dataset), or "
          f"minari.MinariDataset('{summary.path / 'data'}').")


def _add_env_arguments(parser: argparse.ArgumentParser, threads: int | None) -> None:
    base_cli.add_common_arguments(parser)
    parser.add_argument("--benchmarks", default="bpb", choices=("bpb", "all"),
                        help="bpb: language modelling only (fast, default); all: multiple-choice accuracy too")
    parser.add_argument("--reward", default="balanced", help="the env's reward (default: balanced)")
    parser.add_argument("--torch-threads", type=int, default=threads,
                        help=f"torch threads of the env (default: {threads or 'torch default'}; 1 is safest on "
                             "shared cores, where threads spin-waiting on each other slow a step many times)")


def _add_run_arguments(parser: argparse.ArgumentParser, seeds: int, output: str, threads: int | None) -> None:
    _add_env_arguments(parser, threads)
    parser.add_argument("--seeds", type=int, default=seeds, help=f"episodes per agent, seeds 0..N-1 (default: {seeds})")
    parser.add_argument("--output", default=output, help=f"results folder; finished episodes there are reused "
                                                          f"(default: {output})")
    parser.add_argument("--seed", type=int, default=0, help="seed of RegMix's proxy runs and of PPO")


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """``mixing_gym.cli``'s parser with the agents' commands added."""
    parser, commands = base_cli.build_parser()
    evaluate = commands.add_parser("evaluate", help="compare agents on the same seeds: table and plots")
    _add_run_arguments(evaluate, seeds=3, output="runs/compare", threads=None)
    evaluate.add_argument("--agents", default=DEFAULT_AGENTS, help=f"comma-separated names (default: {DEFAULT_AGENTS}; "
                                                                    "also random, regmix, ppo, dma)")
    evaluate.add_argument("--ppo-model", default=None, help="a PPO zip, for the agent 'ppo'")
    evaluate.add_argument("--dma-model", default=None, help="a saved offline agent directory, for the agent 'dma'")
    evaluate.add_argument("--regmix-runs", type=int, default=32, help="RegMix proxy episodes (default: 32)")
    evaluate.set_defaults(func=cmd_evaluate)

    demo = commands.add_parser("demo", help="baselines and a short PPO run on the default env, compared "
                                            "(about 9 min on 2 cores once prepared)",
                               description=DEMO_HELP)
    _add_run_arguments(demo, seeds=1, output="runs/demo", threads=1)
    demo.add_argument("--ppo-timesteps", type=int, default=16, help="PPO training steps (default: 16, two episodes)")
    demo.set_defaults(func=cmd_demo)
    collect = commands.add_parser("collect", help="record trajectories of random mixture policies (offline RL data)",
                                  description=COLLECT_HELP)
    _add_env_arguments(collect, threads=1)
    collect.add_argument("--output", default="runs/trajectories",
                         help="the dataset folder (default: runs/trajectories)")
    collect.add_argument("--seed", type=int, default=0, help="the collection's seed: episode i depends on (seed, i)")
    collect.add_argument("--episodes", type=int, required=True, help="episodes the dataset should hold")
    collect.add_argument("--workers", type=int, default=1, help="worker processes, one env and torch thread each")
    collect.add_argument("--resume", action="store_true", help="continue the dataset at --output to --episodes")
    collect.add_argument("--num-steps", type=int, default=None, help="re-weighting steps per episode (preset default)")
    collect.set_defaults(func=cmd_collect)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    return base_cli.run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
