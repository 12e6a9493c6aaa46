"""``mixing-gym train``: continue pre-training the base checkpoint on one mixture, then score it."""

from __future__ import annotations

import argparse
import json

from agents.cli.arguments import add_command, add_data_arguments, add_threads_argument, data_config_of

DESCRIPTION = """\
Continue pre-training the base checkpoint on one mixture for --tokens tokens
(default: the preset's CPT budget, one episode's worth), then score it.
Prints a JSON report: the mixture, tokens per domain, train loss, tokens/s,
and the base and final scores. Writes nothing unless --save DIR, which saves
the trained model (safetensors and tokenizer) for `mixing-gym score` or
lm_eval. Prepares the cache first if it lacks the space or preset."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``train``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "train", "continue pre-training the base model on one mixture", DESCRIPTION,
                         ["mixing-gym train --preset micro --target-share 0.5 --save runs/half",
                          "mixing-gym train --weights stdlib_docs=0.5,math_word_problems=0.5"])
    add_data_arguments(parser)
    mixture = parser.add_mutually_exclusive_group()
    mixture.add_argument("--weights", help="the mixture as name=weight pairs summing to 1")
    mixture.add_argument("--target-share", type=float, default=0.5,
                         help="share of target-field tokens, uniform within each field (default: 0.5)")
    parser.add_argument("--tokens", type=int, default=None, help="tokens to train (default: the preset's CPT budget)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data sampler and torch (default: 0)")
    parser.add_argument("--save", default=None, help="save the trained model to this directory")
    add_threads_argument(parser, "the training process")
    parser.set_defaults(func=run)


def parse_weights(text: str) -> dict[str, float]:
    """``--weights``'s ``name=weight`` pairs as a dict.

    Args:
        text: the option's value, e.g. ``wikipedia=0.5,math_arithmetic=0.5``.
    """
    weights = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if not value:
            raise ValueError(f"Cannot read {part!r} in --weights; write name=weight pairs, "
                             "e.g. wikipedia=0.5,math_arithmetic=0.5.")
        weights[name.strip()] = float(value)
    return weights


def run(args: argparse.Namespace) -> None:
    """Train on the mixture, score, and print the report.

    Args:
        args: the parsed arguments.
    """
    from mixing_gym.domains import get_domain_space
    from mixing_gym.engine import ProxyRun

    space = get_domain_space(args.space)  # bad weights are reported before anything is prepared
    weights = space.mixture(parse_weights(args.weights)) if args.weights else space.field_mixture(args.target_share)
    run = ProxyRun(space, args.preset, args.cache_dir, data_config_of(args), progress=True)
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
