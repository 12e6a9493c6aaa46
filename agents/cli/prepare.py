"""``mixing-gym prepare``: build a space's data, tokenizer and eval sets and a preset's base checkpoint, once."""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from agents.cli.arguments import add_command, add_data_arguments, data_config_of
from mixing_gym.timings import BASE_PRETRAINING, minutes_seconds

if TYPE_CHECKING:
    from mixing_gym.prepare import PreparedData

PRETRAINED_SMALL, PRETRAINED_MICRO = (minutes_seconds(BASE_PRETRAINING[name].seconds) for name in ("small", "micro"))
DESCRIPTION = f"""\
Prepare what a domain space and a proxy preset need, once: extract the
domains' text, train a byte-level BPE tokenizer, write train and held-out
token shards and the lm-eval benchmark sets, and pretrain the base
checkpoint on the source field. A complete cache is reused (--force
rebuilds it); a broken base checkpoint is rebuilt. Pretraining the base
checkpoint took {PRETRAINED_SMALL} for small and {PRETRAINED_MICRO} for micro on 2 CPU cores.
The default space is math-v1, the one DataMixing-v1 plays. Prints what it
prepared, where, how large, and how long it took.

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


NBSP = "\xa0"


def _megabytes(paths: Iterable[Path]) -> str:
    return f"{sum(path.stat().st_size for path in paths if path.is_file()) / 1e6:.1f} MB"


def _details(text: str) -> str:
    """``text`` wrapped under an entry; non-breaking spaces (in durations) hold their words together."""
    return textwrap.fill(text, width=79, initial_indent=" " * 4, subsequent_indent=" " * 4).replace("\xa0", " ")


def summary(data: PreparedData, base: Path, seconds: float, reused: bool) -> str:
    """What ``prepare`` prepared, where, how large, and how long it took, in a few lines.

    Args:
        data: the prepared data.
        base: the base checkpoint's folder.
        seconds: the wall time of the preparation.
        reused: whether the cache held all of it already.
    """
    from mixing_gym.engine import BASE_MARKER

    domains = data.domain_stats()
    fields = [stats["field"] for stats in domains.values()]
    train = sum(stats["train_tokens"] for stats in domains.values())
    heldout = sum(stats["heldout_tokens"] for stats in domains.values())
    manifest = data.manifest
    when = "already prepared, reused" if reused else f"in {minutes_seconds(seconds)}"
    lines = [f"Prepared space {data.space.name!r} and its base checkpoint ({when}):",
             f"  data             {data.path}",
             _details(f"{len(domains)} domains ({fields.count('source')} source, {fields.count('target')} target), "
                      f"{train:,} train and {heldout:,} held-out tokens, a {manifest['vocab_size']:,}-token "
                      f"tokenizer, {len(manifest['tasks'])} benchmarks: {_megabytes(data.path.rglob('*'))}"),
             f"  base checkpoint  {base}"]
    if (base / BASE_MARKER).is_file():
        record = json.loads((base / BASE_MARKER).read_text())
        took = minutes_seconds(record["train_seconds"]).replace(" ", NBSP)
        lines.append(_details(f"{record['parameters']:,} parameters ({record['preset']['name']}) pretrained on "
                              f"{record['tokens']:,} source-field tokens in {took} (final loss "
                              f"{record['final_loss']:.3f}): {_megabytes(base.iterdir())}"))
    lines.append("`mixing-gym info` lists what the cache holds; an env of this space and\npreset uses it.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    """Prepare the cache and print what was prepared (:func:`summary`).

    Args:
        args: the parsed arguments.
    """
    from agents.cli.info import cache_status
    from mixing_gym.domains import get_domain_space
    from mixing_gym.engine import prepare
    from mixing_gym.models import get_preset

    space, preset, data_config = get_domain_space(args.space), get_preset(args.preset), data_config_of(args)
    reused = not args.force and cache_status(space, preset, data_config, args.cache_dir)[0] == "prepared"
    start = time.perf_counter()
    data, base = prepare(space, preset, args.cache_dir, data_config, force=args.force)
    print(summary(data, base, time.perf_counter() - start, reused))
