"""``mixing-gym tasks``: a space's lm-eval tasks and the ``lm_eval`` command line that runs them."""

from __future__ import annotations

import argparse
import json

from agents.cli.arguments import add_command, add_data_arguments, data_config_of

DESCRIPTION = """\
Print the lm-eval tasks of --space (name, field, kind, metric), the include
path and data directory they read, and an lm_eval command line that runs one
on a checkpoint. Needs the cache prepared (mixing-gym prepare); writes
nothing."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``tasks``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "tasks", "list the lm-eval tasks and the lm_eval command for them", DESCRIPTION,
                         ["mixing-gym tasks --space code --preset micro"])
    add_data_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Print the tasks and an ``lm_eval`` command line for the first.

    Args:
        args: the parsed arguments.
    """
    from mixing_gym.engine import open_prepared
    from mixing_gym.evaluation import space_benchmarks
    from mixing_gym.tasks import TASKS_DIR

    data, base = open_prepared(args.space, args.preset, args.cache_dir, data_config_of(args), auto_prepare=False)
    print(f"include path: {TASKS_DIR}\ndata dir:     {data.path}\n")
    tasks = space_benchmarks(data)
    for task in tasks:
        print(f"{task.spec.name:34s} {task.spec.field:6s} {task.spec.kind:8s} {task.metric}")
    print("\nRun one on a saved checkpoint with lm-eval's own command line:\n"
          f"  lm_eval --model hf --model_args pretrained={base},dtype=float32 --device cpu \\\n"
          f"    --include_path {TASKS_DIR} --tasks {tasks[0].spec.name} \\\n"
          f"    --metadata '{json.dumps({'data_dir': str(data.path)})}'")
