"""``mixing-gym benchmark``: RL algorithms trained on the reference surrogate, validated on the real env."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agents.cli.arguments import add_backend_arguments, add_command, split_names
from mixing_gym.reference import REFERENCE_SURROGATES

DESCRIPTION = """\
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


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``benchmark``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "benchmark", "RL algorithms on the reference surrogate, validated on the real env",
                         DESCRIPTION, ["mixing-gym benchmark --algos ppo,sac,td3,a2c,dma --seeds 10",
                                       "mixing-gym benchmark --algos a2c --seeds 3 --validate 0 --output runs/a2c",
                                       "mixing-gym benchmark --target-field code --output runs/benchmark-code"])
    parser.add_argument("--algos", default="ppo,sac,td3,a2c,dma",
                        help="comma-separated: ppo, a2c, sac, td3, dma (default: all five)")
    parser.add_argument("--seeds", type=int, default=10, help="runs per algorithm, seeds 0..N-1 (default: 10)")
    parser.add_argument("--timesteps", type=int, default=100_000,
                        help="surrogate env steps of each online run (default: 100000)")
    parser.add_argument("--num-envs", type=int, default=16, help="surrogate envs stepped together (default: 16)")
    parser.add_argument("--validate", type=int, default=3,
                        help="runs of each algorithm that also play one real episode (default: 3; 0: none)")
    parser.add_argument("--preset", default="small", help="the real env's proxy preset (default: small)")
    parser.add_argument("--target-field", default="math", choices=sorted({field for _, field in REFERENCE_SURROGATES}),
                        help="the target field of the surrogate and the real env (default: math)")
    parser.add_argument("--output", default="runs/benchmark", help="where it all goes (default: runs/benchmark)")
    parser.add_argument("--results", default=None, help="also write the per-run CSV here")
    add_backend_arguments(parser, workers_default=2)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Run (or resume) the benchmark and print its table.

    Args:
        args: the parsed arguments.
    """
    from agents.backends import Backend
    from agents.benchmark import BenchmarkProtocol, check_algorithms, markdown, run_benchmark, write_report

    algorithms = check_algorithms(split_names(args.algos))
    protocol = BenchmarkProtocol(timesteps=args.timesteps, num_envs=args.num_envs, preset=args.preset,
                                 target_field=args.target_field)
    backend = Backend(args.backend, args.workers, args.address, args.num_gpus)
    start = time.perf_counter()
    rows = run_benchmark(algorithms, args.seeds, args.output, protocol, args.validate, backend)
    table = write_report(rows, args.output, args.results)
    print(markdown(table))
    written = [path.name for path in sorted(Path(args.output).glob("*")) if path.is_file()]
    print(f"{len(rows)} runs in {args.output}/ (this call: {time.perf_counter() - start:.0f} s): {', '.join(written)}")
