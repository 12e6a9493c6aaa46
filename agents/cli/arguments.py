"""The argument groups that several commands share, and what they build: the env's ``gym.make`` arguments, the
data config, the backend, the thread policy."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agents.cli.dataclass_options import add_options, options_from_args
from mixing_gym import DEFAULT_ENV_ID, REAL_ENV_IDS

if TYPE_CHECKING:  # the heavy modules load only when a command needs them
    from agents.backends import Backend
    from mixing_gym.prepare import DataConfig

THREADS_HELP = ("torch threads of {what} (default: 1). One thread per env process is the project's thread "
                "policy: on busy cores, threads spin-waiting on each other made a micro step take 4.9 s "
                "instead of 0.64 s. Pass more on an idle machine.")


def add_command(commands: argparse._SubParsersAction, name: str, summary: str, description: str,
                examples: Sequence[str]) -> argparse.ArgumentParser:
    """Register a command whose ``--help`` shows its description and examples as written.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
        name: the command's name.
        summary: its one line in ``mixing-gym --help``.
        description: what it does, what it writes and where; line breaks are kept.
        examples: example invocations, one a line.
    """
    return commands.add_parser(name, help=summary, description=description,
                               epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir`` and the fields of the data config: which prepared cache a command uses.

    Args:
        parser: the command's parser.
    """
    from mixing_gym.prepare import DataConfig

    parser.add_argument("--cache-dir", default=None,
                        help="cache root (default: $MIXING_GYM_CACHE, else ~/.cache/mixing_gym)")
    data = parser.add_argument_group("data config (how the cache is prepared; a change prepares anew)")
    add_options(data, DataConfig, rename={"seed": "data_seed"})


def add_data_arguments(parser: argparse.ArgumentParser, space_default: str | None = "math",
                       space_help: str = "math", target_field_help: str | None = None) -> None:
    """``--space`` (or ``--target-field``), ``--preset`` and the cache: what a command prepares, trains or scores.

    Args:
        parser: the command's parser.
        space_default: ``--space``'s default (``None``: the env's own space).
        space_help: how the help text names that default.
        target_field_help: the help of ``--target-field``, a field's space instead of ``--space`` (``None``: the
            command takes no ``--target-field``).
    """
    spaces = parser
    if target_field_help is not None:
        spaces = parser.add_mutually_exclusive_group()
        spaces.add_argument("--target-field", default=None, help=target_field_help)
    spaces.add_argument("--space", default=space_default,
                        help=f"domain space: math, math-v1, code, code-v1, or a YAML file (default: {space_help})")
    parser.add_argument("--preset", default="small", help="proxy preset: micro, small, paper-50m (default: small)")
    add_cache_arguments(parser)


def add_threads_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--torch-threads``, default 1: the thread policy (:func:`set_thread_policy`), with the measurement behind it.

    Args:
        parser: the command's parser.
        what: whose threads they are, for the help text ("each env process").
    """
    parser.add_argument("--torch-threads", type=int, default=1, help=THREADS_HELP.format(what=what))


def add_env_arguments(parser: argparse.ArgumentParser, threads_of: str) -> None:
    """``--env`` and the options of ``gym.make(env, ...)`` a command exposes.

    Args:
        parser: the command's parser.
        threads_of: whose torch threads ``--torch-threads`` sets, for its help text.
    """
    parser.add_argument("--env", default=DEFAULT_ENV_ID, choices=REAL_ENV_IDS,
                        help=f"the env (default: {DEFAULT_ENV_ID}: task benchmarks, 30 domains, finite target data; "
                             "DataMixing-v0: the per-domain loss env of the README's v0 numbers)")
    add_data_arguments(parser, space_default=None, space_help="the env's: math-v1 on DataMixing-v1, math on "
                       "DataMixing-v0", target_field_help="the env's space of a target field, instead of --space: "
                       "math or code (math-v1 or code-v1 on DataMixing-v1, math or code on DataMixing-v0)")
    parser.add_argument("--benchmarks", default="bpb", choices=("bpb", "all"),
                        help="bpb: language modelling only (fast, default); all: multiple-choice accuracy too")
    parser.add_argument("--reward", default="balanced", help="the env's reward (default: balanced)")
    parser.add_argument("--num-steps", type=int, default=None,
                        help="re-weighting steps per episode (default: the preset's)")
    add_threads_argument(parser, threads_of)


def add_backend_arguments(parser: argparse.ArgumentParser, workers_default: int = 1) -> None:
    """``--workers``, ``--backend``, ``--address`` and ``--num-gpus``: where the command's episodes run.

    Args:
        parser: the command's parser.
        workers_default: ``--workers``'s default.
    """
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


def set_thread_policy(threads: int) -> None:
    """Run torch on ``threads`` threads, here and in every process started from here on (env workers, PPO's
    subprocess envs, a local Ray): the envs leave the process's threads alone, so the command sets them once.

    Args:
        threads: torch threads per process.
    """
    if threads < 1:
        raise ValueError(f"--torch-threads must be at least 1, got {threads}.")
    os.environ["OMP_NUM_THREADS"] = str(threads)  # what torch starts with in a worker process
    import torch

    torch.set_num_threads(threads)


def resolve_target_field(args: argparse.Namespace) -> None:
    """Set ``args.space`` to the space of ``--target-field`` on ``--env`` (on DataMixing-v1 for a command without
    ``--env``), where a command has both options and the field is given: it then runs on that space as
    ``gym.make(env, target_field=...)`` would.

    Args:
        args: the parsed arguments, changed in place.
    """
    if getattr(args, "target_field", None) is None or not hasattr(args, "space"):
        return
    from mixing_gym.envs import target_field_space_of

    args.space = target_field_space_of(getattr(args, "env", DEFAULT_ENV_ID), args.target_field).name


def target_field_of(args: argparse.Namespace) -> str | None:
    """The target field of the command's space: ``--target-field``, else that of ``--space`` (``None``: the env's
    own, math).

    Args:
        args: the parsed arguments of a command with :func:`add_env_arguments`.
    """
    if args.target_field is not None or args.space is None:
        return args.target_field
    from mixing_gym.domains import get_domain_space

    return get_domain_space(args.space).target_field


def data_config_of(args: argparse.Namespace) -> DataConfig:
    """The data config the command's options ask for.

    Args:
        args: the parsed arguments of a command with :func:`add_cache_arguments`.
    """
    from mixing_gym.prepare import DataConfig

    return options_from_args(DataConfig, args)


def env_kwargs_of(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``gym.make(args.env, ...)`` the command's options ask for.

    Args:
        args: the parsed arguments of a command with :func:`add_env_arguments`.
    """
    kwargs = {"preset": args.preset, "space": args.space, "cache_dir": args.cache_dir,
              "data_config": data_config_of(args), "benchmarks": args.benchmarks, "reward": args.reward}
    if args.num_steps is not None:
        kwargs["num_steps"] = args.num_steps
    if getattr(args, "num_gpus", 0):  # episodes that hold a GPU train on it
        kwargs["device"] = "cuda"
    return kwargs


def backend_of(args: argparse.Namespace) -> Backend | None:
    """Where the command's episodes run: ``None`` (one after another here) for one local worker.

    Args:
        args: the parsed arguments of a command with :func:`add_backend_arguments`.
    """
    from agents.backends import Backend

    if args.backend == "process" and args.workers == 1:
        return None
    return Backend(args.backend, args.workers, args.address, args.num_gpus)


def split_names(text: str) -> list[str]:
    """The names of a comma-separated option (``--agents``, ``--algos``), blanks dropped.

    Args:
        text: the option's value.
    """
    return [name.strip() for name in text.split(",") if name.strip()]
