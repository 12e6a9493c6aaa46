"""``mixing-gym score``: score a saved checkpoint on a space's benchmarks."""

from __future__ import annotations

import argparse
import json

from agents.cli.arguments import add_command, add_data_arguments, data_config_of

DESCRIPTION = """\
Score a saved checkpoint (a save_pretrained directory, e.g. from
`mixing-gym train --save`) on the benchmarks of --space and print, as JSON,
its raw scores, their improvements over the base checkpoint of --preset and
the source and target aggregates. Needs the cache prepared (mixing-gym
prepare); writes nothing."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``score``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "score", "score a saved checkpoint on a space's benchmarks", DESCRIPTION,
                         ["mixing-gym score runs/half --preset micro"])
    add_data_arguments(parser)
    parser.add_argument("checkpoint", help="a model directory (save_pretrained)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Print the checkpoint's scores, improvements over the base checkpoint.

    Args:
        args: the parsed arguments.
    """
    from mixing_gym.engine import open_prepared
    from mixing_gym.evaluation import Evaluator
    from mixing_gym.models import get_preset, load_model

    preset = get_preset(args.preset)
    data, base = open_prepared(args.space, preset, args.cache_dir, data_config_of(args), auto_prepare=False)
    evaluator = Evaluator(data, max_length=preset.seq_len)
    reference = evaluator.raw_scores(load_model(base))  # the field aggregates are improvements over the base model
    print(json.dumps(evaluator.evaluate(load_model(args.checkpoint), reference=reference).flat(), indent=1))
