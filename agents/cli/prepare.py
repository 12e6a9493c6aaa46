"""``mixing-gym prepare``: build a space's data, tokenizer and eval sets and a preset's base checkpoint, once."""

from __future__ import annotations

import argparse
import json

from agents.cli.arguments import add_command, add_data_arguments, data_config_of

DESCRIPTION = """\
Prepare what a domain space and a proxy preset need, once: extract the
domains' text, train a byte-level BPE tokenizer, write train and held-out
token shards and the lm-eval benchmark sets, and pretrain the base
checkpoint on the source field. A complete cache is reused (--force
rebuilds it). About 5 minutes for small on two CPU cores; seconds for micro.
The default space is math-v1, the one DataMixing-v1 plays.

Writes under the cache root (--cache-dir, else $MIXING_GYM_CACHE, else
~/.cache/mixing_gym):
  data/<space>-<hash>/                    token shards, tokenizer, eval sets
  models/<space>-<hash>/<preset>-<hash>/  the base checkpoint (safetensors)"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``prepare``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "prepare", "build the data, tokenizer, eval sets and base checkpoint", DESCRIPTION,
                         ["mixing-gym prepare --preset micro",
                          "mixing-gym prepare --target-field code --preset small",
                          "mixing-gym prepare --space my_space.yaml --preset micro"])
    add_data_arguments(parser, space_default="math-v1", space_help="math-v1, DataMixing-v1's space of the math field",
                       target_field_help="DataMixing-v1's space of a target field, instead of --space: math "
                                         "(math-v1) or code (code-v1)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete cache exists")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Prepare the cache and print where it is and the tokens per domain.

    Args:
        args: the parsed arguments.
    """
    from mixing_gym.engine import prepare

    data, base = prepare(args.space, args.preset, args.cache_dir, data_config_of(args), force=args.force)
    print(f"data:            {data.path}")
    print(f"base checkpoint: {base}")
    print(json.dumps({name: {k: v for k, v in stats.items() if k.endswith("tokens")}
                      for name, stats in data.domain_stats().items()}, indent=1))
