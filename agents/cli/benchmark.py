"""``mixing-gym benchmark``: any RL algorithm trained on the reference surrogate, validated on the real env."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from agents.cli.arguments import add_backend_arguments, add_command, split_names
from mixing_gym.reference import DEFAULT_BENCHMARK_SURROGATE, REFERENCE_SURROGATES

DEFAULT_ALGORITHMS = "ppo,sac,td3,a2c,dma"

DESCRIPTION = f"""\
Train each algorithm of --algos/--algo for --seeds runs under one protocol
(agents.benchmark: --timesteps surrogate env steps on --num-envs
vectorised envs of {DEFAULT_BENCHMARK_SURROGATE}, the reference surrogate refit on
real episodes of trained policies, with its penalty on the ensemble's
disagreement), score every final policy by its return on the surrogate,
validate the first --validate runs of each on the real env (DataMixing-v1
small, one episode each), and report normalised
scores (0: uniform, 100: the search baseline's best) as IQMs with
stratified-bootstrap 95% intervals, the probability of improving on the
best, performance profiles, and each algorithm's gap between surrogate and
real scores. --surrogate-env DataMixingSurrogate-v1 runs protocol version 1
(the first reference surrogates, no penalty), whose results it reproduces.
--target-field code does all of it on the code field: its
reference surrogate, its trajectories, DataMixing-v1(target_field="code")
and its reference scores.

An algorithm is a built-in name (Stable-Baselines3's ppo, a2c, sac, td3 with
the hyperparameters of agents.algorithms.ALGORITHMS; dma, the offline Data
Mixing Agent, on the reference trajectories; planner, the cross-entropy method
on the surrogate model) or your own factory, by spec:
  package.module:make_agent     importable from here or installed
  path/to/file.py:make_agent    any Python file (":make_agent" may be left out)
  name=SPEC                     names its rows and folders (default: the
                                module's or file's name)
A factory is called as factory(env, seed, budget): env is the vector
surrogate (Gymnasium VectorEnv, same-step autoreset, not yet reset), seed
the run's seed, budget the training budget in env steps; it trains with its
own code and returns a policy: an SB3 model, an agents.base.Agent, or a
callable observation -> action (agents.algorithms.AgentFactory).

Writes into --output: one folder per run (run.json and its policy), real/
(the real episodes), protocol.json, benchmark.csv (a row per run with its
spec and the protocol version; also to --results), benchmark.md and
profiles_surrogate.png, profiles_real.png. Every run is saved as it ends:
rerun the same command to resume."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``benchmark``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "benchmark", "RL algorithms on the reference surrogate, validated on the real env",
                         DESCRIPTION, ["mixing-gym benchmark --algos ppo,sac,td3,a2c,dma --seeds 10",
                                       "mixing-gym benchmark --algos a2c --seeds 3 --validate 0 --output runs/a2c",
                                       "mixing-gym benchmark --algo examples/reinforce.py --algo ppo --seeds 3",
                                       "mixing-gym benchmark --algo my_package.module:make_agent --validate 0",
                                       "mixing-gym benchmark --target-field code --output runs/benchmark-code"])
    parser.add_argument("--algos", default=None,
                        help=f"comma-separated built-in names and specs (default: {DEFAULT_ALGORITHMS} unless --algo "
                             "is given)")
    parser.add_argument("--algo", action="append", default=[], metavar="SPEC",
                        help="an algorithm: a built-in name, package.module:make_agent, path/to/file.py:make_agent "
                             "or name=SPEC; repeatable, or comma-separated")
    parser.add_argument("--seeds", type=int, default=10, help="runs per algorithm, seeds 0..N-1 (default: 10)")
    parser.add_argument("--timesteps", type=int, default=100_000,
                        help="training budget of each run, in surrogate env steps (default: 100000)")
    parser.add_argument("--num-envs", type=int, default=16, help="surrogate envs stepped together (default: 16)")
    parser.add_argument("--validate", type=int, default=5,
                        help="runs of each algorithm that also play one real episode (default: 5; 0: none)")
    parser.add_argument("--surrogate-env", default=DEFAULT_BENCHMARK_SURROGATE, metavar="ENV_ID",
                        choices=sorted({env for env, _ in REFERENCE_SURROGATES}),
                        help="the surrogate env the algorithms train on, which sets the protocol's version: "
                             "%(choices)s (default: %(default)s)")
    parser.add_argument("--ran-by", default=None, metavar="NAME",
                        help="who runs it, recorded in every row for the leaderboard (default: the login name)")
    parser.add_argument("--preset", default="small", help="the real env's proxy preset (default: small)")
    parser.add_argument("--target-field", default="math", choices=sorted({field for _, field in REFERENCE_SURROGATES}),
                        help="the target field of the surrogate and the real env (default: math)")
    parser.add_argument("--output", default="runs/benchmark", help="where it all goes (default: runs/benchmark)")
    parser.add_argument("--results", default=None, help="also write the per-run CSV here")
    add_backend_arguments(parser, workers_default=2)
    parser.set_defaults(func=run)


def algorithm_specs(args: argparse.Namespace) -> list[str]:
    """The algorithms of ``--algos`` and every ``--algo``, in order (the default five where neither is given).

    Args:
        args: the parsed arguments.
    """
    specs = split_names(args.algos) if args.algos is not None else []
    specs += [spec for text in args.algo for spec in split_names(text)]
    if args.algos is None and not args.algo:
        specs = split_names(DEFAULT_ALGORITHMS)
    return specs


def run(args: argparse.Namespace) -> None:
    """Run (or resume) the benchmark and print its table.

    Args:
        args: the parsed arguments.
    """
    from agents.algorithms import algorithms_of
    from agents.backends import Backend
    from agents.benchmark import BenchmarkProtocol, markdown, run_benchmark, write_report

    algorithms = {algorithm.name: algorithm.spec for algorithm in algorithms_of(algorithm_specs(args))}
    protocol = BenchmarkProtocol(timesteps=args.timesteps, num_envs=args.num_envs, preset=args.preset,
                                 target_field=args.target_field, surrogate_env_id=args.surrogate_env)
    backend = Backend(args.backend, args.workers, args.address, args.num_gpus)
    start = time.perf_counter()
    rows = run_benchmark(protocol, algorithms, args.seeds, args.output, args.validate, backend, ran_by=args.ran_by,
                         command=shlex.join(["mixing-gym", *args.argv]))
    table = write_report(rows, args.output, args.results)
    print(markdown(table))
    written = [path.name for path in sorted(Path(args.output).glob("*")) if path.is_file()]
    print(f"{len(rows)} runs in {args.output}/ (this call: {time.perf_counter() - start:.0f} s): {', '.join(written)}")
