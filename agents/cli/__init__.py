"""The ``mixing-gym`` command line: one module per command, each with ``add_parser(commands)`` and ``run(args)``.

:func:`main` parses the arguments, sets the process's thread policy once (``--torch-threads``, before any env
is made), and turns the expected errors (a missing cache, a bad name or value) into one message and exit
status 2.
"""

from __future__ import annotations

import argparse
import difflib
import sys

from agents.cli import (
    agents,
    benchmark,
    collect,
    demo,
    evaluate,
    info,
    install_dataset,
    prepare,
    score,
    tasks,
    train,
    train_agent,
)
from agents.cli.arguments import resolve_target_field, set_thread_policy
from mixing_gym.storage import CacheError

#: The commands in the order ``mixing-gym --help`` lists them.
COMMANDS = (info, prepare, train, score, tasks, install_dataset, agents, evaluate, demo, collect, train_agent,
            benchmark)

DESCRIPTION = """\
mixing-gym: learn to mix pre-training data.

DataMixing-v1 is a Gymnasium env: each step continues pre-training a small
proxy language model on the mixture of domains an agent chose, scores it on
source-field and target-field task benchmarks, and rewards the balance
between target gains and forgetting of the source field. These commands
prepare its data, run and score mixtures by hand, train and compare agents
and record trajectories, all offline on a CPU."""

EPILOG = """\
examples:
  mixing-gym info              spaces, presets and what is prepared
  mixing-gym demo              learned agents against the baselines, compared
  mixing-gym prepare --preset micro     the tiny proxy, prepared in seconds
  mixing-gym agents            the agents, what each needs and does
  mixing-gym evaluate --preset micro --seeds 5 --agents uniform,odm,doremi
  mixing-gym train-agent --algo planner --target-field code
  mixing-gym collect --preset micro --episodes 16 --workers 2
  mixing-gym benchmark --algos ppo,sac,td3,a2c,dma --seeds 10

Run "mixing-gym COMMAND --help" for a command's options and what it writes.
The cache is in $MIXING_GYM_CACHE, else ~/.cache/mixing_gym."""


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``mixing-gym`` parser and its command registry."""
    parser = argparse.ArgumentParser(prog="mixing-gym", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser, commands


def unknown_options(command: argparse.ArgumentParser, unknown: list[str]) -> str:
    """The error message of arguments ``command`` does not take, with the closest option to each misspelt one.

    Args:
        command: the command's parser.
        unknown: the arguments it left over.
    """
    known = [option for action in command._actions for option in action.option_strings]
    hints = []
    for argument in unknown:
        close = difflib.get_close_matches(argument.partition("=")[0], known, n=1) if argument.startswith("--") else []
        hints.append(f"{argument} (did you mean {close[0]}?)" if close else argument)
    return f"unrecognized arguments: {' '.join(hints)}"


def main(argv: list[str] | None = None) -> int:
    """Run ``mixing-gym`` on ``argv`` (default: the process's arguments); returns the exit status.

    Args:
        argv: the arguments after the program's name.
    """
    parser, commands = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = commands.choices[args.command]
        command.error(unknown_options(command, unknown))
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a command records of how it was run
    try:
        if hasattr(args, "torch_threads"):
            set_thread_policy(args.torch_threads)
        resolve_target_field(args)
        args.func(args)
    except (CacheError, FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"mixing-gym: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every command commits as it goes: one line says so, rather than a traceback
        print(f"\nmixing-gym: interrupted. Everything finished is kept (prepared data, the base pretraining's last "
              f"snapshot, episodes, trajectories, trials); run `mixing-gym {args.command}` with the same options again "
              "to continue.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
