"""The mixing-gym command line with the agents: ``mixing_gym.cli``'s commands plus evaluate, demo, collect and
benchmark."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixing_gym import DEFAULT_ENV_ID, REAL_ENV_IDS
from mixing_gym import cli as base_cli
from mixing_gym.reference import REFERENCE_SURROGATES

if TYPE_CHECKING:
    import pandas as pd

    from agents.backends import Backend
    from agents.base import Agent
    from agents.harness import Comparison

DEFAULT_AGENTS = "uniform,source_only,target_only,fixed_ratio,linear_schedule,odm,doremi"
DEMO_AGENTS = "target_only,fixed_ratio,odm,doremi"
#: The files of a comparison in its output folder, as the report lists them.
RESULT_FILES = ("results.md", "results.csv", "episodes.csv", "mixtures.png", "scores.png", "frontier.png", "episodes/")

EPILOG = """\
examples:
  mixing-gym info              spaces, presets and what is prepared
  mixing-gym demo              baselines and PPO on the default env, compared
  mixing-gym prepare --space code --preset micro
  mixing-gym evaluate --preset micro --seeds 5 --agents uniform,odm,doremi
  mixing-gym collect --preset micro --episodes 16 --workers 2
  mixing-gym benchmark --algos ppo,sac,td3,a2c,dma --seeds 10

Run "mixing-gym COMMAND --help" for a command's options and what it writes.
The cache is in $MIXING_GYM_CACHE, else ~/.cache/mixing_gym."""

COMPARISON_FILES = """\
  results.md, results.csv  per agent: mean and 95% interval of the final
                           source, target and balanced scores, the return
                           and the target share
  episodes.csv             one row per episode
  mixtures.png             each agent's mixture over the steps
  scores.png               source and target scores over the steps
  frontier.png             final source score against target score
  episodes/                one JSON per finished episode; a rerun reuses
                           them, so an interrupted comparison resumes"""

EVALUATE_HELP = f"""\
Play every agent of --agents for --seeds episodes of --env (DataMixing-v1
by default), on the same seeds 0..N-1, and compare them. Prints the table
and which agent has the best balanced score (the mean of the source and
target improvements) and whether its lead is larger than the 95% confidence
intervals. Writes into --output:
{COMPARISON_FILES}"""

DEMO_HELP = f"""\
The whole loop on the default env (DataMixing-v1: small proxy, math-v1
space; --env, --preset and --space change it): train PPO for 16 steps in 2
worker processes, then play it and the baselines target_only, fixed_ratio,
odm and doremi on the same seeds and compare them as evaluate does, ending
with what the comparison found. 12 min 20 s on 2 idle CPU cores from a cold
cache: preparing the data 1 min, pretraining the base checkpoint 4 min, PPO
1 min, then 5 episodes of 8 steps, about 70 s each; 7 minutes once the
cache is there.

Writes into --output: ppo/ (the PPO model ppo_final.zip, its checkpoints and
logs; a rerun reuses the model) and evaluate's files:
{COMPARISON_FILES}"""

COLLECT_HELP = """\
Record episodes of random mixture policies (Dirichlet draws of varied
concentration, field splits from source-only to target-only, baselines'
mixtures perturbed by noise; with --tilt-share, mixtures near the top) on
--env (DataMixing-v1 by default), in --workers processes (or Ray tasks,
--backend ray): the offline RL data of the surrogate env and the Data
Mixing Agent. Episode i depends only on --seed and i, so a Ray collection
records what a local one does; --seed-pool plays them on a few seeds in
turn.

Writes a Minari dataset folder at --output: data/metadata.json (the env's
arguments and layout) and one Arrow file per episode under data/. Each
finished episode is committed atomically, so a killed collection keeps what
it wrote and --resume continues it to --episodes."""


def _env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``gym.make(args.env, ...)`` the command's options ask for."""
    kwargs = {"preset": args.preset, "space": args.space, "cache_dir": args.cache_dir,
              "data_config": base_cli.data_config_from_args(args), "benchmarks": args.benchmarks,
              "reward": args.reward, "torch_threads": args.torch_threads}
    if getattr(args, "num_gpus", 0):  # episodes that hold a GPU train on it
        kwargs["device"] = "cuda"
    return kwargs


def _backend(args: argparse.Namespace) -> Backend | None:
    """Where the command's episodes run: ``None`` (one after another here) for one local worker."""
    from agents.backends import Backend

    if args.backend == "process" and args.workers == 1:
        return None
    return Backend(args.backend, args.workers, args.address, args.num_gpus)


def _build_agents(names: list[str], env_id: str, env_kwargs: dict[str, Any], output: str | Path, seed: int,
                  ppo_model: str | None = None, regmix_runs: int = 32,
                  dma_model: str | None = None, surrogate: str | None = None,
                  backend: Backend | None = None) -> dict[str, Agent]:
    """The named agents, RegMix and the search trained (their proxy runs cached in ``output``, played on
    ``backend``), PPO loaded from ``ppo_model``, the offline Data Mixing Agent from ``dma_model`` and the
    planner's plan made on ``surrogate``."""
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
        elif name == "planner":
            if not surrogate:
                raise ValueError("Agent 'planner' needs --surrogate DIR (a SurrogateModel saved with model.save).")
            agents[name] = AGENTS[name](surrogate, seed=seed)
        elif name in ("regmix", "search"):  # both learn from real proxy episodes, cached in a table
            env = gym.make(env_id, **env_kwargs)
            try:
                table = Path(output) / f"{name}_runs.csv"
                agents[name] = (AGENTS[name]().learn(env, num_runs=regmix_runs, seed=seed, table_path=table,
                                                     backend=backend) if name == "regmix" else
                                AGENTS[name](batch=backend.workers if backend else 1).learn(
                                    env, budget=regmix_runs, seed=seed, table_path=table, backend=backend))
            finally:
                env.close()
        else:
            agents[name] = AGENTS[name]()
    return agents


def finding(summary: pd.DataFrame, metric: str = "balanced") -> str:
    """What a comparison found, in one or two lines: the best agent on ``metric``, its lead over the next, and
    whether that lead is larger than the 95% confidence intervals.

    Args:
        summary: :attr:`agents.harness.Comparison.summary`: one row per agent with ``agent``, ``episodes`` and
            ``<metric>_mean`` / ``<metric>_ci95`` (the interval's half-width, NaN for a single episode).
        metric: the metric to rank by (the balanced score, whatever the env's reward).
    """
    label = f"{metric} score"
    ranked = summary.sort_values(f"{metric}_mean", ascending=False, kind="stable").to_dict("records")
    best = ranked[0]
    if len(ranked) == 1:
        return f"Finding: one agent, {best['agent']}, with a {label} of {best[f'{metric}_mean']:+.4f}."
    runner = ranked[1]
    lead = best[f"{metric}_mean"] - runner[f"{metric}_mean"]
    first = (f"Finding: {best['agent']} has the best {label}, {best[f'{metric}_mean']:+.4f}, {lead:.4f} above "
             f"{runner['agent']} ({runner[f'{metric}_mean']:+.4f}).")
    best_ci, runner_ci = best[f"{metric}_ci95"], runner[f"{metric}_ci95"]
    if math.isnan(best_ci) or math.isnan(runner_ci):
        return (first + "\nWith one seed per agent there are no 95% confidence intervals to tell that lead from "
                        "noise; --seeds 5 plays five seeds per agent and gives them.")
    intervals = f"±{best_ci:.4f} and ±{runner_ci:.4f} over {best['episodes']} seeds"
    # Two intervals that do not overlap: the lead exceeds both half-widths together.
    if lead > best_ci + runner_ci:
        return first + f"\nThe lead is larger than the 95% confidence intervals ({intervals}): they do not overlap."
    return (first + f"\nThe lead is within the 95% confidence intervals ({intervals}): they overlap, so the two "
                    "are not told apart; more --seeds narrow the intervals.")

BENCHMARK_HELP = """\
Train each algorithm of --algos (Stable-Baselines3's ppo, a2c, sac, td3 on
the vectorised reference surrogate DataMixingSurrogate-v1; dma, the offline
Data Mixing Agent, on the reference trajectories) for --seeds runs under one
protocol (agents.benchmark: --timesteps env steps, --num-envs envs, the
hyperparameters of agents.benchmark.ALGORITHMS), score every final policy on
the surrogate, validate the first --validate runs of each on the real env
(DataMixing-v1 small, one episode each), and report normalised scores (0:
uniform, 100: the search baseline's best) as IQMs with stratified-bootstrap
95% intervals, the probability of improving on the best, performance
profiles, and each algorithm's gap between surrogate and real scores.
--target-field code does all of it on the code field: its reference
surrogate, its trajectories, DataMixing-v1(target_field="code") and its
reference scores.

Writes into --output: one folder per run (run.json and its model), real/
(the real episodes), protocol.json, benchmark.csv (a row per run; also to
--results), benchmark.md and profiles_surrogate.png, profiles_real.png.
Every run is saved as it ends: rerun the same command to resume."""


def _report(comparison: Comparison) -> None:
    """Print the comparison's table, where its files are, and, last, what it found."""
    print((comparison.output_dir / "results.md").read_text())
    print(f"{comparison.new_episodes} new episodes; results and plots in {comparison.output_dir}/:")
    for name in RESULT_FILES:
        print(f"  {comparison.output_dir}/{name}")  # not a Path join, which drops the slash of "episodes/"
    print()
    print(finding(comparison.summary))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from agents.harness import evaluate_agents

    env_kwargs = _env_kwargs(args)
    names = [name.strip() for name in args.agents.split(",") if name.strip()]
    backend = _backend(args)
    agents = _build_agents(names, args.env, env_kwargs, args.output, args.seed, args.ppo_model, args.regmix_runs,
                           args.dma_model, args.surrogate, backend)
    _report(evaluate_agents(agents, args.seeds, env_kwargs, args.output, env_id=args.env, backend=backend))


def cmd_demo(args: argparse.Namespace) -> None:
    from agents.harness import evaluate_agents
    from agents.ppo import FINAL_MODEL, train_ppo
    from mixing_gym.envs import prepare_env

    output = Path(args.output)
    env_kwargs = _env_kwargs(args)
    prepare_env(args.env, env_kwargs)
    model_path = output / "ppo" / FINAL_MODEL
    if not model_path.exists():
        print(f"training PPO for {args.ppo_timesteps} steps in 2 envs ...", flush=True)
        train_ppo(args.preset, total_timesteps=args.ppo_timesteps, n_envs=2, seed=args.seed, log_dir=output / "ppo",
                  env_kwargs={k: v for k, v in env_kwargs.items() if k != "preset"}, verbose=0, progress_bar=True,
                  env_id=f"mixing_gym:{args.env}")
    agents = _build_agents([*DEMO_AGENTS.split(","), "ppo"], args.env, env_kwargs, output, args.seed, str(model_path))
    _report(evaluate_agents(agents, args.seeds, env_kwargs, output, env_id=args.env))


def cmd_collect(args: argparse.Namespace) -> None:
    from agents.collect import MixturePlan, TiltPlan, collect

    env_kwargs = _env_kwargs(args)
    if args.num_steps is not None:
        env_kwargs["num_steps"] = args.num_steps
    plan = MixturePlan(baseline_share=args.baseline_share,
                       tilts=TiltPlan(share=args.tilt_share) if args.tilt_share else None, seed_pool=args.seed_pool)
    summary = collect(env_kwargs, args.episodes, args.workers, args.output, args.seed, args.resume, plan,
                      env_id=args.env, backend=_backend(args))
    print(f"{summary.path} holds {summary.episodes} episodes; this run played {summary.new_episodes} in "
          f"{summary.seconds:.0f} s with {summary.workers} workers ({summary.episodes_per_hour:.0f} per hour).")
    print("Read it with mixing_gym.trajectories.load_trajectories (or to_hf_dataset, minari_dataset), or "
          f"minari.MinariDataset('{summary.path / 'data'}').")


def cmd_benchmark(args: argparse.Namespace) -> None:
    from agents.backends import Backend
    from agents.benchmark import BenchmarkProtocol, check_algorithms, markdown, run_benchmark, write_report

    algorithms = check_algorithms([name.strip() for name in args.algos.split(",") if name.strip()])
    protocol = BenchmarkProtocol(timesteps=args.timesteps, num_envs=args.num_envs, preset=args.preset,
                                 target_field=args.target_field)
    backend = Backend(args.backend, args.workers, args.address, args.num_gpus)
    start = time.perf_counter()
    rows = run_benchmark(algorithms, args.seeds, args.output, protocol, args.validate, backend)
    table = write_report(rows, args.output, args.results)
    print(markdown(table))
    written = [path.name for path in sorted(Path(args.output).glob("*")) if path.is_file()]
    print(f"{len(rows)} runs in {args.output}/ (this call: {time.perf_counter() - start:.0f} s): {', '.join(written)}")


def _add_env_arguments(parser: argparse.ArgumentParser, threads_of: str) -> None:
    """``--env`` and the options of ``gym.make(env, ...)`` a command exposes.

    Args:
        parser: the command's parser.
        threads_of: whose torch threads ``--torch-threads`` sets, for its help text.
    """
    parser.add_argument("--env", default=DEFAULT_ENV_ID, choices=REAL_ENV_IDS,
                        help=f"the env (default: {DEFAULT_ENV_ID}: task benchmarks, 30 domains, finite target data; "
                             "DataMixing-v0: the per-domain loss env of the README's v0 numbers)")
    base_cli.add_common_arguments(parser, space_default=None,
                                  space_help="the env's: math-v1 on DataMixing-v1, math on DataMixing-v0")
    parser.add_argument("--benchmarks", default="bpb", choices=("bpb", "all"),
                        help="bpb: language modelling only (fast, default); all: multiple-choice accuracy too")
    parser.add_argument("--reward", default="balanced", help="the env's reward (default: balanced)")
    base_cli.add_threads_argument(parser, threads_of)


def add_backend_arguments(parser: argparse.ArgumentParser, workers_default: int = 1) -> None:
    """``--workers``, ``--backend``, ``--address`` and ``--num-gpus``: where the command's episodes run."""
    parser.add_argument("--workers", type=int, default=workers_default,
                        help="episodes played at once: worker processes, or the CPUs of the local Ray that "
                             f"--backend ray starts (default: {workers_default})")
    parser.add_argument("--backend", default="process", choices=("process", "ray"),
                        help="process: a pool of worker processes here (default); ray: one Ray task per episode, "
                             'on a local Ray or the cluster at --address (pip install -e ".[ray]")')
    parser.add_argument("--address", default=None,
                        help="with --backend ray: the cluster to join (auto: the one `ray start` runs here); "
                             "default: start a local Ray of --workers CPUs")
    parser.add_argument("--num-gpus", type=float, default=0.0,
                        help="with --backend ray: GPUs each episode holds, a fraction to share one (0.25: four "
                             "proxies a GPU); the env then trains on cuda (default: 0, the CPU)")


def _add_run_arguments(parser: argparse.ArgumentParser, seeds: int, output: str) -> None:
    _add_env_arguments(parser, "each env process")
    parser.add_argument("--seeds", type=int, default=seeds,
                        help=f"episodes per agent, on seeds 0..N-1; 2 or more give 95%% intervals (default: {seeds})")
    parser.add_argument("--output", default=output,
                        help=f"results folder; finished episodes there are reused (default: {output})")
    parser.add_argument("--seed", type=int, default=0, help="seed of RegMix's proxy runs and of PPO (default: 0)")


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """``mixing_gym.cli``'s parser with the agents' commands added."""
    parser, commands = base_cli.build_parser()
    parser.epilog = EPILOG  # the examples of the whole tool, agents' commands included

    evaluate = base_cli.add_command(
        commands, "evaluate", "compare agents on the same seeds: table, plots, episodes", EVALUATE_HELP,
        ["mixing-gym evaluate --preset micro --seeds 5",
         "mixing-gym evaluate --agents uniform,ppo --ppo-model runs/ppo/ppo_final.zip",
         "mixing-gym evaluate --agents regmix --backend ray --address auto"])
    _add_run_arguments(evaluate, seeds=3, output="runs/compare")
    evaluate.add_argument("--agents", default=DEFAULT_AGENTS,
                          help=f"comma-separated agent names (default: {DEFAULT_AGENTS.replace(',', ', ')}); also "
                               "random, regmix and search (learn from --regmix-runs proxy episodes), "
                               "ppo (needs --ppo-model), dma (needs --dma-model) and planner (needs --surrogate)")
    evaluate.add_argument("--ppo-model", default=None, help="a PPO zip, for the agent ppo")
    evaluate.add_argument("--dma-model", default=None, help="a saved offline agent directory, for the agent dma")
    evaluate.add_argument("--surrogate", default=None,
                          help="a saved surrogate directory, for the agent planner (plans on it with --seed)")
    evaluate.add_argument("--regmix-runs", type=int, default=32,
                          help="real proxy episodes RegMix and the search baseline learn from (default: 32; "
                               "the search proposes --workers trials at a time)")
    add_backend_arguments(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    demo = base_cli.add_command(
        commands, "demo", "baselines and a short PPO run on the default env, compared", DEMO_HELP,
        ["mixing-gym demo", "mixing-gym demo --preset micro --output runs/demo-micro",
         "mixing-gym demo --seeds 5 --output runs/demo-5seeds"])
    _add_run_arguments(demo, seeds=1, output="runs/demo")
    demo.add_argument("--ppo-timesteps", type=int, default=16, help="PPO training steps (default: 16, two episodes)")
    demo.set_defaults(func=cmd_demo)

    collect = base_cli.add_command(
        commands, "collect", "record trajectories of random mixtures (a Minari dataset)", COLLECT_HELP,
        ["mixing-gym collect --preset small --episodes 64 --workers 2",
         "mixing-gym collect --preset small --episodes 128 --workers 2 --resume",
         "mixing-gym collect --episodes 128 --tilt-share 0.4 --seed-pool 8",
         "mixing-gym collect --episodes 512 --backend ray --address auto"])
    _add_env_arguments(collect, "each worker process")
    collect.add_argument("--output", default="runs/trajectories",
                         help="the dataset folder (default: runs/trajectories)")
    collect.add_argument("--seed", type=int, default=0, help="the collection's seed: episode i depends on (seed, i)")
    collect.add_argument("--episodes", type=int, required=True, help="episodes the dataset should hold")
    add_backend_arguments(collect)
    collect.add_argument("--resume", action="store_true", help="continue the dataset at --output to --episodes")
    collect.add_argument("--baseline-share", type=float, default=0.5,
                         help="share of the episodes that perturb a baseline's mixture (default: %(default)s)")
    collect.add_argument("--tilt-share", type=float, default=0.0,
                         help="share of the episodes near the top: a target share in [0.1, 0.6] and log-normal "
                              "tilts within each field, held or switched once (default: 0, none)")
    collect.add_argument("--seed-pool", type=int, default=None,
                         help="play the episodes on this many env seeds in turn: common random numbers "
                              "(default: a seed per episode)")
    collect.add_argument("--num-steps", type=int, default=None,
                         help="re-weighting steps per episode (default: the preset's)")
    collect.set_defaults(func=cmd_collect)

    benchmark = base_cli.add_command(
        commands, "benchmark", "RL algorithms on the reference surrogate, validated on the real env", BENCHMARK_HELP,
        ["mixing-gym benchmark --algos ppo,sac,td3,a2c,dma --seeds 10",
         "mixing-gym benchmark --algos a2c --seeds 3 --validate 0 --output runs/a2c",
         "mixing-gym benchmark --target-field code --output runs/benchmark-code"])
    benchmark.add_argument("--algos", default="ppo,sac,td3,a2c,dma",
                           help="comma-separated: ppo, a2c, sac, td3, dma (default: all five)")
    benchmark.add_argument("--seeds", type=int, default=10, help="runs per algorithm, seeds 0..N-1 (default: 10)")
    benchmark.add_argument("--timesteps", type=int, default=100_000,
                           help="surrogate env steps of each online run (default: 100000)")
    benchmark.add_argument("--num-envs", type=int, default=16, help="surrogate envs stepped together (default: 16)")
    benchmark.add_argument("--validate", type=int, default=3,
                           help="runs of each algorithm that also play one real episode (default: 3; 0: none)")
    benchmark.add_argument("--preset", default="small", help="the real env's proxy preset (default: small)")
    benchmark.add_argument("--target-field", default="math",
                           choices=sorted({field for _, field in REFERENCE_SURROGATES}),
                           help="the target field of the surrogate and the real env (default: math)")
    benchmark.add_argument("--output", default="runs/benchmark", help="where it all goes (default: runs/benchmark)")
    benchmark.add_argument("--results", default=None, help="also write the per-run CSV here")
    add_backend_arguments(benchmark, workers_default=2)
    benchmark.set_defaults(func=cmd_benchmark)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    return base_cli.run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
