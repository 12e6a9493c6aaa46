"""The mixing-gym command line: info, prepare, train on a mixture, score, list tasks.

``agents.cli`` adds the agents' commands (evaluate, demo, collect) to this parser; the installed
``mixing-gym`` command is that extended parser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mixing_gym.storage import CACHE_ENV_VAR, CacheError

if TYPE_CHECKING:  # the heavy modules load only when a command needs them
    from mixing_gym.domains import DomainSpace
    from mixing_gym.models import ProxyPreset
    from mixing_gym.prepare import DataConfig

DESCRIPTION = """\
mixing-gym: learn to mix pre-training data.

DataMixing-v0 is a Gymnasium env: each step continues pre-training a small
proxy language model on the mixture of domains an agent chose, scores it on
source-field and target-field benchmarks, and rewards the balance between
target gains and forgetting of the source field. These commands prepare its
data, run and score mixtures by hand, compare agents and record
trajectories, all offline on a CPU."""

EPILOG = """\
examples:
  mixing-gym info                        spaces, presets and what is prepared
  mixing-gym prepare --preset micro      the tiny proxy, prepared in seconds
  mixing-gym train --preset micro --target-share 0.3

Run "mixing-gym COMMAND --help" for a command's options and what it writes.
The cache is in $MIXING_GYM_CACHE, else ~/.cache/mixing_gym."""

THREADS_HELP = ("torch threads of {what} (default: 1). One thread per env process is the project's thread "
                "policy: on busy cores, threads spin-waiting on each other made a micro step take 4.9 s "
                "instead of 0.64 s. Pass more on an idle machine.")


def add_command(commands: argparse._SubParsersAction, name: str, summary: str, description: str,
                examples: Sequence[str]) -> argparse.ArgumentParser:
    """Register a sub-command whose ``--help`` shows its description and examples as written.

    Args:
        commands: the sub-command registry returned by :func:`build_parser`.
        name: the command's name.
        summary: its one line in ``mixing-gym --help``.
        description: what it does, what it writes and where; line breaks are kept.
        examples: example invocations, one a line.
    """
    return commands.add_parser(name, help=summary, description=description,
                               epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir`` and ``--max-train-chars``: which prepared cache a command uses."""
    parser.add_argument("--cache-dir", default=None,
                        help="cache root (default: $MIXING_GYM_CACHE, else ~/.cache/mixing_gym)")
    parser.add_argument("--max-train-chars", type=int, default=None,
                        help="train characters kept per domain (default: the data config's 2,000,000)")


def add_common_arguments(parser: argparse.ArgumentParser, space_default: str | None = "math",
                         space_help: str = "math") -> None:
    """The options of every command that works on one space and preset.

    Args:
        parser: the command's parser.
        space_default: ``--space``'s default (``None``: the env's own space).
        space_help: how the help text names that default.
    """
    spaces = parser
    if space_default is None:  # a command that makes an env: its space, or the one of a target field
        spaces = parser.add_mutually_exclusive_group()
        spaces.add_argument("--target-field", default=None,
                            help="the env's space of a target field, instead of --space: math or code (math-v1 or "
                                 "code-v1 on DataMixing-v1, math or code on DataMixing-v0)")
    spaces.add_argument("--space", default=space_default,
                        help=f"domain space: math, math-v1, code, code-v1, or a YAML file (default: {space_help})")
    parser.add_argument("--preset", default="small", help="proxy preset: micro, small, paper-50m (default: small)")
    add_cache_arguments(parser)


def resolve_target_field(args: argparse.Namespace) -> None:
    """Set ``args.space`` to the space of ``--target-field`` on ``--env``, where a command has both and the field
    is given: the command then runs on that space as ``gym.make(env, target_field=...)`` would."""
    if getattr(args, "target_field", None) is None or not hasattr(args, "env"):
        return
    from mixing_gym.envs import target_field_space_of

    args.space = target_field_space_of(args.env, args.target_field).name


def add_threads_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--torch-threads``, default 1: the thread policy, with the measurement behind it.

    Args:
        parser: the command's parser.
        what: whose threads they are, for the help text ("each env process").
    """
    parser.add_argument("--torch-threads", type=int, default=1, help=THREADS_HELP.format(what=what))


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    """The data config the command's ``--max-train-chars`` asks for."""
    from mixing_gym.prepare import DataConfig

    return DataConfig(max_train_chars=args.max_train_chars) if args.max_train_chars else DataConfig()


def _parse_weights(text: str) -> dict[str, float]:
    weights = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if not value:
            raise ValueError(f"Cannot read {part!r} in --weights; write name=weight pairs, "
                             "e.g. wikipedia=0.5,math_arithmetic=0.5.")
        weights[name.strip()] = float(value)
    return weights


def cmd_prepare(args: argparse.Namespace) -> None:
    from mixing_gym.engine import prepare

    data, base = prepare(args.space, args.preset, args.cache_dir, data_config_from_args(args), force=args.force)
    print(f"data:            {data.path}")
    print(f"base checkpoint: {base}")
    print(json.dumps({name: {k: v for k, v in stats.items() if k.endswith("tokens")}
                      for name, stats in data.domain_stats().items()}, indent=1))


def cmd_train(args: argparse.Namespace) -> None:
    import torch

    from mixing_gym.domains import get_domain_space
    from mixing_gym.engine import ProxyRun

    torch.set_num_threads(args.torch_threads)
    space = get_domain_space(args.space)  # bad weights are reported before anything is prepared
    weights = space.mixture(_parse_weights(args.weights)) if args.weights else space.field_mixture(args.target_share)
    run = ProxyRun(space, args.preset, args.cache_dir, data_config_from_args(args), progress=True)
    tokens = args.tokens or run.preset.cpt_tokens
    run.reset(seed=args.seed, total_tokens=tokens)
    report = run.train(weights, tokens)
    scores = run.evaluate()
    if args.save:
        run.save(args.save)
    print(json.dumps({
        "mixture": dict(zip(run.space.names, weights.round(4).tolist())),
        "tokens_per_domain": dict(zip(run.space.names, report.tokens_per_domain.tolist())),
        "train_loss": report.loss,
        "tokens_per_second": round(report.tokens_per_second),
        "base_scores": run.base_scores,
        "scores": scores.flat(),
    }, indent=1))


def cmd_score(args: argparse.Namespace) -> None:
    from mixing_gym.engine import open_prepared
    from mixing_gym.evaluation import Evaluator
    from mixing_gym.models import get_preset, load_model

    preset = get_preset(args.preset)
    data, base = open_prepared(args.space, preset, args.cache_dir, data_config_from_args(args), auto_prepare=False)
    evaluator = Evaluator(data, max_length=preset.seq_len)
    reference = evaluator.raw_scores(load_model(base))  # the field aggregates are improvements over the base model
    print(json.dumps(evaluator.evaluate(load_model(args.checkpoint), reference=reference).flat(), indent=1))


def cmd_tasks(args: argparse.Namespace) -> None:
    from mixing_gym.engine import open_prepared
    from mixing_gym.evaluation import space_benchmarks
    from mixing_gym.tasks import TASKS_DIR

    data, base = open_prepared(args.space, args.preset, args.cache_dir, data_config_from_args(args), auto_prepare=False)
    print(f"include path: {TASKS_DIR}\ndata dir:     {data.path}\n")
    tasks = space_benchmarks(data)
    for task in tasks:
        print(f"{task.spec.name:34s} {task.spec.field:6s} {task.spec.kind:8s} {task.metric}")
    print("\nRun one on a saved checkpoint with lm-eval's own command line:\n"
          f"  lm_eval --model hf --model_args pretrained={base},dtype=float32 --device cpu \\\n"
          f"    --include_path {TASKS_DIR} --tasks {tasks[0].spec.name} \\\n"
          f"    --metadata '{json.dumps({'data_dir': str(data.path)})}'")


# --------------------------------------------------------------------------------------------
# info


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

    Returns ``("prepared", checkpoint)``, ``("data only", data dir)`` (no base checkpoint yet),
    ``("incomplete", data dir)`` (partial or from another version: ``prepare --force`` rebuilds it) or
    ``("not prepared", data dir)`` (where ``prepare`` will write it).

    Args:
        space: the :class:`~mixing_gym.domains.DomainSpace`.
        preset: the :class:`~mixing_gym.models.ProxyPreset`.
        data_config: the :class:`~mixing_gym.prepare.DataConfig` the data was prepared with.
        cache_dir: the cache root (None: the default).
    """
    from mixing_gym.engine import BASE_MARKER, base_checkpoint_dir
    from mixing_gym.prepare import PreparedData, data_dir_for

    path = data_dir_for(space, data_config, cache_dir)
    if not (path / "manifest.json").exists():
        return "not prepared", path
    try:
        data = PreparedData.open(path, space, verify=False)  # sizes only: checksums would read every shard
    except CacheError:
        return "incomplete", path
    base = base_checkpoint_dir(data, preset)
    return ("prepared", base) if (base / BASE_MARKER).exists() else ("data only", path)


def describe_space(space: DomainSpace) -> str:
    """A space's name, target field and domains, grouped by field, as text lines.

    Args:
        space: the space.
    """
    extra = f", plus the benchmark {', '.join(space.benchmarks)}" if space.benchmarks else ""
    lines = [f"space {space.name!r} (target field {space.target_field}): {len(space)} domains{extra}"]
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


def cmd_install_dataset(args: argparse.Namespace) -> None:
    from mixing_gym.trajectories import install_reference_dataset, read_metadata

    path = install_reference_dataset(args.dataset_id, force=args.force)
    metadata = read_metadata(path)
    print(f"{args.dataset_id}: {metadata['total_episodes']} episodes at {path}; ref_min_score "
          f"{metadata['ref_min_score']:+.4f}, ref_max_score {metadata['ref_max_score']:+.4f}.\n"
          f"Read it with minari.load_dataset({args.dataset_id!r}).")


def cmd_info(args: argparse.Namespace) -> None:
    from mixing_gym.domains import BUILTIN_SPACES
    from mixing_gym.models import PRESETS
    from mixing_gym.prepare import DataConfig
    from mixing_gym.storage import resolve_cache_dir

    spaces = {name: make() for name, make in BUILTIN_SPACES.items()}
    print('Domain spaces (--space NAME, or gym.make("DataMixing-v0", target_field=NAME)):\n')
    print("\n\n".join(describe_space(space) for space in spaces.values()))

    vocab_size = DataConfig().vocab_size
    rows = [("preset", "parameters", "layers x width", "CPT steps x tokens", "base tokens")]
    rows += [(p.name, f"{preset_parameters(p, vocab_size):,}", f"{p.num_layers} x {p.hidden_size}",
              f"{p.num_steps} x {p.tokens_per_step:,}", f"{p.base_tokens:,}") for p in PRESETS.values()]
    print(f"\nProxy presets (--preset NAME); parameters with the built-in {vocab_size:,}-token BPE:\n")
    print(table(rows, right=(1, 2, 3, 4)))

    data_config = data_config_from_args(args)
    root = resolve_cache_dir(args.cache_dir)
    rows = [("space", "preset", "cache", "path (under the root)")]
    for name, space in spaces.items():
        for preset in PRESETS.values():
            status, path = cache_status(space, preset, data_config, args.cache_dir)
            rows.append((name, preset.name, status, str(path.relative_to(root))))
    print(f"\nCache root: {root} ({_cache_root_origin(args.cache_dir)})\n")
    print(table(rows))
    print("\nprepared: data and base checkpoint (path: the checkpoint); data only: no base\n"
          "checkpoint yet; not prepared: nothing yet (path: where the data will go).\n"
          "`mixing-gym prepare --space SPACE --preset PRESET` prepares one; an env\n"
          "prepares what it lacks on first use.")


# --------------------------------------------------------------------------------------------
# The parser


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``mixing-gym`` parser and its sub-command registry, for front ends that add commands (``agents.cli``)."""
    parser = argparse.ArgumentParser(prog="mixing-gym", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")

    info = add_command(commands, "info", "list the domain spaces, proxy presets and what is prepared", """\
List the built-in domain spaces (each domain with its field), the proxy
presets (parameter count, CPT budget in steps x tokens, base pretraining)
and, for every space and preset, whether the cache is prepared and where.
The cache root is --cache-dir, else $MIXING_GYM_CACHE, else
~/.cache/mixing_gym. Writes nothing.""", ["mixing-gym info", "mixing-gym info --cache-dir /data/mixing_gym"])
    add_cache_arguments(info)
    info.set_defaults(func=cmd_info)

    prepare = add_command(commands, "prepare", "build the data, tokenizer, eval sets and base checkpoint", """\
Prepare what a domain space and a proxy preset need, once: extract the
domains' text, train a byte-level BPE tokenizer, write train and held-out
token shards and the lm-eval benchmark sets, and pretrain the base
checkpoint on the source field. A complete cache is reused (--force
rebuilds it). About 5 minutes for small on two CPU cores; seconds for micro.

Writes under the cache root (--cache-dir, else $MIXING_GYM_CACHE, else
~/.cache/mixing_gym):
  data/<space>-<hash>/                    token shards, tokenizer, eval sets
  models/<space>-<hash>/<preset>-<hash>/  the base checkpoint (safetensors)""",
                          ["mixing-gym prepare --space math --preset small",
                           "mixing-gym prepare --space my_space.yaml --preset micro"])
    add_common_arguments(prepare)
    prepare.add_argument("--force", action="store_true", help="rebuild even if a complete cache exists")
    prepare.set_defaults(func=cmd_prepare)

    train = add_command(commands, "train", "continue pre-training the base model on one mixture", """\
Continue pre-training the base checkpoint on one mixture for --tokens tokens
(default: the preset's CPT budget, one episode's worth), then score it.
Prints a JSON report: the mixture, tokens per domain, train loss, tokens/s,
and the base and final scores. Writes nothing unless --save DIR, which saves
the trained model (safetensors and tokenizer) for `mixing-gym score` or
lm_eval. Prepares the cache first if it lacks the space or preset.""",
                        ["mixing-gym train --preset micro --target-share 0.5 --save runs/half",
                         "mixing-gym train --weights stdlib_docs=0.5,math_word_problems=0.5"])
    add_common_arguments(train)
    group = train.add_mutually_exclusive_group()
    group.add_argument("--weights", help="the mixture as name=weight pairs summing to 1")
    group.add_argument("--target-share", type=float, default=0.5,
                       help="share of target-field tokens, uniform within each field (default: 0.5)")
    train.add_argument("--tokens", type=int, default=None, help="tokens to train (default: the preset's CPT budget)")
    train.add_argument("--seed", type=int, default=0, help="seed of the data sampler and torch (default: 0)")
    train.add_argument("--save", default=None, help="save the trained model to this directory")
    add_threads_argument(train, "the training process")
    train.set_defaults(func=cmd_train)

    score = add_command(commands, "score", "score a saved checkpoint on a space's benchmarks", """\
Score a saved checkpoint (a save_pretrained directory, e.g. from
`mixing-gym train --save`) on the benchmarks of --space and print, as JSON,
its raw scores, their improvements over the base checkpoint of --preset and
the source and target aggregates. Needs the cache prepared (mixing-gym
prepare); writes nothing.""", ["mixing-gym score runs/half --preset micro"])
    add_common_arguments(score)
    score.add_argument("checkpoint", help="a model directory (save_pretrained)")
    score.set_defaults(func=cmd_score)

    tasks = add_command(commands, "tasks", "list the lm-eval tasks and the lm_eval command for them", """\
Print the lm-eval tasks of --space (name, field, kind, metric), the include
path and data directory they read, and an lm_eval command line that runs one
on a checkpoint. Needs the cache prepared (mixing-gym prepare); writes
nothing.""", ["mixing-gym tasks --space code --preset micro"])
    add_common_arguments(tasks)
    tasks.set_defaults(func=cmd_tasks)

    install = add_command(commands, "install-dataset", "make the reference trajectories a Minari dataset", """\
Copy reference trajectories shipped in the package (128 DataMixing-v1
episodes of the small proxy: mixing-gym/v1-small-v0 of the math field,
mixing-gym/v1-code-small-v0 of the code field) into Minari's datasets folder
($MINARI_DATASETS_PATH, else ~/.minari/datasets) under --dataset-id, with
ref_min_score (uniform's mean return) and ref_max_score (the search's best),
so that minari.load_dataset(ID) reads them offline and
minari.get_normalized_score(dataset, returns) scales returns. Nothing is
downloaded; an installed copy is kept unless --force.""",
                          ["mixing-gym install-dataset",
                           "mixing-gym install-dataset --dataset-id mixing-gym/v1-code-small-v0",
                           "MINARI_DATASETS_PATH=/data/minari mixing-gym install-dataset --force"])
    install.add_argument("--dataset-id", default="mixing-gym/v1-small-v0",
                         help="the reference dataset to install (default: %(default)s)")
    install.add_argument("--force", action="store_true", help="install again over an installed copy")
    install.set_defaults(func=cmd_install_dataset)
    return parser, commands


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; expected errors become a message and exit status 2."""
    try:
        resolve_target_field(args)
        args.func(args)
    except (CacheError, FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"mixing-gym: error: {message}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
