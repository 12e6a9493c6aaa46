"""``mixing-gym info``: the domain spaces, the proxy presets and what the cache holds."""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agents.cli.arguments import add_cache_arguments, add_command, data_config_of
from mixing_gym.storage import CACHE_ENV_VAR, CacheError

if TYPE_CHECKING:
    from mixing_gym.domains import DomainSpace
    from mixing_gym.models import ProxyPreset
    from mixing_gym.prepare import DataConfig

DESCRIPTION = """\
List the built-in domain spaces (each domain with its field; DataMixing-v1,
the default env, plays math-v1 and code-v1), the proxy presets (parameter
count, CPT budget in steps x tokens, base pretraining) and, for every space
and preset, whether the cache is prepared and where; a base checkpoint that
is incomplete or corrupt is reported with what is wrong. The cache root is
--cache-dir, else $MIXING_GYM_CACHE, else ~/.cache/mixing_gym. Writes
nothing."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``info``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "info", "list the domain spaces, proxy presets and what is prepared", DESCRIPTION,
                         ["mixing-gym info", "mixing-gym info --cache-dir /data/mixing_gym"])
    add_cache_arguments(parser)
    parser.set_defaults(func=run)


def table(rows: Sequence[Sequence[str]], right: Sequence[int] = (), indent: str = "  ") -> str:
    """Rows of cells as aligned text; the first row is the header.

    Args:
        rows: the header, then the rows, all of the same length.
        right: indices of the columns aligned right (numbers).
        indent: put before every line.
    """
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) if column in right else cell.ljust(width)
                       for column, (cell, width) in enumerate(zip(row, widths))) for row in rows]
    return "\n".join(indent + line.rstrip() for line in lines)


def preset_parameters(preset: ProxyPreset, vocab_size: int) -> int:
    """The parameter count of a preset's proxy for a vocabulary size, without allocating its weights.

    Args:
        preset: the :class:`~mixing_gym.models.ProxyPreset`.
        vocab_size: the tokenizer's vocabulary size.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from mixing_gym.models import count_parameters

    config = preset.model_config(vocab_size, eos_token_id=0, pad_token_id=1)  # token ids add no parameters
    with torch.device("meta"):  # shapes only: the same model as training builds, at no memory or init cost
        return count_parameters(AutoModelForCausalLM.from_config(config))


def cache_status(space: DomainSpace, preset: ProxyPreset, data_config: DataConfig,
                 cache_dir: str | Path | None) -> tuple[str, Path]:
    """Whether the cache holds the data of ``space`` and the base checkpoint of ``preset``, and where.

    Returns one of

    - ``("prepared", checkpoint)``: the data and a complete, intact base checkpoint;
    - ``("base broken", checkpoint)``: a base checkpoint that is incomplete or corrupt
      (:func:`~mixing_gym.engine.checkpoint_problem` says how; the next ``prepare`` rebuilds it);
    - ``("pretraining", data dir)``: a base checkpoint part-trained, its pretraining still running or stopped
      part way (the next ``prepare`` resumes it);
    - ``("data only", data dir)``: no base checkpoint yet;
    - ``("incomplete", data dir)``: data that is partial or from another version (``prepare --force`` rebuilds it);
    - ``("not prepared", data dir)``: nothing yet (where ``prepare`` will write it).

    Args:
        space: the :class:`~mixing_gym.domains.DomainSpace`.
        preset: the :class:`~mixing_gym.models.ProxyPreset`.
        data_config: the :class:`~mixing_gym.prepare.DataConfig` the data was prepared with.
        cache_dir: the cache root (None: the default).
    """
    from mixing_gym.engine import SNAPSHOT_SUFFIX, base_checkpoint_dir, checkpoint_problem
    from mixing_gym.prepare import PreparedData, data_dir_for

    path = data_dir_for(space, data_config, cache_dir)
    if not (path / "manifest.json").exists():
        return "not prepared", path
    try:
        data = PreparedData.open(path, space, verify=False)  # sizes only: checksums would read every shard
    except CacheError:
        return "incomplete", path
    base = base_checkpoint_dir(data, preset)
    if base.exists():
        return ("prepared", base) if checkpoint_problem(base) is None else ("base broken", base)
    if (base.parent / f"{base.name}{SNAPSHOT_SUFFIX}").exists():
        return "pretraining", path
    return "data only", path


def describe_space(space: DomainSpace) -> str:
    """A space's name, target field and domains, grouped by field, as text lines.

    Args:
        space: the space.
    """
    plural = "s" if len(space.benchmarks) > 1 else ""
    extra = f", plus the benchmark{plural} {', '.join(space.benchmarks)}" if space.benchmarks else ""
    lines = [textwrap.fill(f"space {space.name!r} (target field {space.target_field}): {len(space)} domains{extra}",
                           width=79, subsequent_indent="  ")]
    for field in ("source", "target"):
        names = ", ".join(domain.name for domain in space.subspace(field))
        lines.append(textwrap.fill(names, width=79, initial_indent=f"  {field}  ", subsequent_indent=" " * 10))
    return "\n".join(lines)


def _cache_root_origin(cache_dir: str | None) -> str:
    if cache_dir is not None:
        return "from --cache-dir"
    if os.environ.get(CACHE_ENV_VAR):
        return f"from ${CACHE_ENV_VAR}"
    return f"the default; ${CACHE_ENV_VAR} or --cache-dir moves it"


def run(args: argparse.Namespace) -> None:
    """Print the spaces, the presets and the cache's state.

    Args:
        args: the parsed arguments.
    """
    from mixing_gym.domains import BUILTIN_SPACES
    from mixing_gym.engine import checkpoint_problem
    from mixing_gym.models import PRESETS
    from mixing_gym.prepare import DataConfig
    from mixing_gym.storage import resolve_cache_dir

    # DataMixing-v1's spaces first: it is the default env
    names = sorted(BUILTIN_SPACES, key=lambda name: (not name.endswith("-v1"), list(BUILTIN_SPACES).index(name)))
    spaces = {name: BUILTIN_SPACES[name]() for name in names}
    print("Domain spaces (--space NAME). DataMixing-v1, the default env, plays math-v1\n"
          '(target_field="math") and code-v1 (target_field="code"); DataMixing-v0\n'
          "plays math and code.\n")
    print("\n\n".join(describe_space(space) for space in spaces.values()))

    vocab_size = DataConfig().vocab_size
    rows = [("preset", "parameters", "layers x width", "CPT steps x tokens", "base tokens")]
    rows += [(p.name, f"{preset_parameters(p, vocab_size):,}", f"{p.num_layers} x {p.hidden_size}",
              f"{p.num_steps} x {p.tokens_per_step:,}", f"{p.base_tokens:,}") for p in PRESETS.values()]
    print(f"\nProxy presets (--preset NAME); parameters with the built-in {vocab_size:,}-token BPE:\n")
    print(table(rows, right=(1, 2, 3, 4)))

    data_config = data_config_of(args)
    root = resolve_cache_dir(args.cache_dir)
    rows = [("space", "preset", "cache", "path (under the root)")]
    broken = []
    for name, space in spaces.items():
        for preset in PRESETS.values():
            status, path = cache_status(space, preset, data_config, args.cache_dir)
            rows.append((name, preset.name, status, str(path.relative_to(root))))
            if status == "base broken":
                broken.append(f"  {name} {preset.name}: {checkpoint_problem(path)}.")
    print(f"\nCache root: {root} ({_cache_root_origin(args.cache_dir)})\n")
    print(table(rows))
    if broken:
        print("\nBroken base checkpoints (the next `mixing-gym prepare` of the space and\npreset, or an env of them, "
              "rebuilds each):\n" + "\n".join(broken))
    print("\nprepared: data and base checkpoint (path: the checkpoint); base broken: a\n"
          "base checkpoint that is incomplete or corrupt; pretraining: a base\n"
          "checkpoint part-trained, its pretraining running or stopped (the next\n"
          "prepare resumes it); data only: no base checkpoint yet; incomplete:\n"
          "partial data (prepare --force rebuilds it); not prepared: nothing yet\n"
          "(path: where the data will go).\n"
          "`mixing-gym prepare --space SPACE --preset PRESET` prepares one; an env\n"
          "prepares what it lacks on first use.")
