"""The ``mixing-gym`` command line: prepare, train on a mixture, score, list tasks and spaces."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from mixing_gym.storage import CacheError


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="math", help="domain space: math, code, or a YAML file (default: math)")
    parser.add_argument("--preset", default="small", help="proxy preset: micro, small, paper-50m (default: small)")
    parser.add_argument("--cache-dir", default=None,
                        help="cache root (default: $MIXING_GYM_CACHE or ~/.cache/mixing_gym)")
    parser.add_argument("--max-train-chars", type=int, default=None, help="train characters kept per domain")


def data_config_from_args(args):
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


def cmd_prepare(args) -> None:
    from mixing_gym.engine import prepare

    data, base = prepare(args.space, args.preset, args.cache_dir, data_config_from_args(args), force=args.force)
    print(f"data:            {data.path}")
    print(f"base checkpoint: {base}")
    print(json.dumps({name: {k: v for k, v in stats.items() if k.endswith("tokens")}
                      for name, stats in data.domain_stats().items()}, indent=1))


def cmd_train(args) -> None:
    from mixing_gym.domains import get_domain_space
    from mixing_gym.engine import ProxyRun

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


def cmd_score(args) -> None:
    from mixing_gym.engine import open_prepared
    from mixing_gym.evaluation import Evaluator
    from mixing_gym.models import get_preset, load_model

    preset = get_preset(args.preset)
    data, base = open_prepared(args.space, preset, args.cache_dir, data_config_from_args(args), auto_prepare=False)
    evaluator = Evaluator(data, max_length=preset.seq_len)
    reference = evaluator.raw_scores(load_model(base))  # the field aggregates are improvements over the base model
    print(json.dumps(evaluator.evaluate(load_model(args.checkpoint), reference=reference).flat(), indent=1))


def cmd_tasks(args) -> None:
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


def cmd_info(args) -> None:
    from mixing_gym.domains import BUILTIN_SPACES
    from mixing_gym.models import PRESETS

    for name, make in BUILTIN_SPACES.items():
        space = make()
        print(f"space {name!r} (target field {space.target_field}): source={space.source_names} "
              f"target={space.target_names}")
    for preset in PRESETS.values():
        print(f"preset {preset.name!r}: " + ", ".join(f"{k}={v}" for k, v in asdict(preset).items() if k != "name"))


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``mixing-gym`` parser and its sub-command registry, for front ends that add commands (``agents.cli``)."""
    parser = argparse.ArgumentParser(prog="mixing-gym", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="prepare the domains' data, tokenizer, eval sets and base checkpoint")
    add_common_arguments(prepare)
    prepare.add_argument("--force", action="store_true", help="rebuild even if a complete cache exists")
    prepare.set_defaults(func=cmd_prepare)

    train = commands.add_parser("train", help="continue training the base model on one mixture and score it")
    add_common_arguments(train)
    group = train.add_mutually_exclusive_group()
    group.add_argument("--weights", help="mixture as name=weight pairs summing to 1")
    group.add_argument("--target-share", type=float, default=0.5,
                       help="share of target-field tokens (uniform within fields)")
    train.add_argument("--tokens", type=int, default=None, help="tokens to train (default: the preset's CPT budget)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save", default=None, help="save the trained model to this directory")
    train.set_defaults(func=cmd_train)

    score = commands.add_parser("score", help="score a saved checkpoint on the space's benchmarks")
    add_common_arguments(score)
    score.add_argument("checkpoint", help="a model directory (save_pretrained)")
    score.set_defaults(func=cmd_score)

    tasks = commands.add_parser("tasks", help="list the lm-eval tasks and how to run them with lm_eval")
    add_common_arguments(tasks)
    tasks.set_defaults(func=cmd_tasks)

    info = commands.add_parser("info", help="list the built-in domain spaces and presets")
    info.set_defaults(func=cmd_info)
    return parser, commands


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; expected errors become a message and exit status 2."""
    try:
        args.func(args)
    except (CacheError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"mixing-gym: error: {message}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser, _ = build_parser()
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
