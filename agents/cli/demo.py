"""``mixing-gym demo``: the main job (:func:`agents.demo.run_demo`): learned agents against the baselines, compared."""

from __future__ import annotations

import argparse
import textwrap

from agents.cli.arguments import add_command, env_kwargs_of, split_names
from agents.cli.evaluate import COMPARISON_FILES, add_comparison_arguments, report
from mixing_gym.timings import DEMO_COST, minutes_seconds

NBSP = "\xa0"  # holds a duration or a command together where the text wraps
_COST = {name: minutes_seconds(getattr(DEMO_COST, name)).replace(" ", NBSP)
         for name in ("total", "prepare", "pretraining", "learn", "play")}
_BY = DEMO_COST.measured_by.replace("$(mktemp -d)", f"$(mktemp{NBSP}-d)")
COSTS = textwrap.fill(
    f"Costs: {_COST['total']} from a cold cache, measured by {_BY}: preparing {_COST['prepare']} "
    f"(the data, then the base checkpoint: {_COST['pretraining']} of it), learning "
    f"{_COST['learn']} beside it, the {DEMO_COST.episodes} episodes {_COST['play']}. With the cache there: the "
    "learning and the episodes alone.", width=75, break_on_hyphens=False).replace(NBSP, " ")

DESCRIPTION = f"""\
The project's result in miniature, on the default env (DataMixing-v1: the
small proxy, math-v1 space). An agent learned from the reference data
shipped in the package, planner (the cross-entropy method on the reference
surrogate; --learned planner,dma_tuned adds the Data Mixing Agent trained on
the reference trajectories, a round of episodes more), against four
baselines: uniform, fixed_ratio@0.25 (the environment card's best field
ratio), odm and doremi. Each plays --seeds env seeds (default 2, the
fewest with 95% intervals) in --workers worker processes (default 2); the
command prints the table, then what the comparison found: the best agent,
its lead over the next, and whether their 95% intervals overlap.

The learned agents play only where their reference data was recorded:
DataMixing-v1 on preset small, space math-v1 (code-v1 with --target-field
code), default data config and episode length. Elsewhere (--preset micro,
another --space or --env) the demo says so and the baselines play alone.

{COSTS}

Writes into --output the files of a comparison (`mixing-gym evaluate`):
{COMPARISON_FILES}"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``demo``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "demo", "learned agents against the baselines on the default env",
                         DESCRIPTION, ["mixing-gym demo",
                                       "mixing-gym demo --target-field code --output runs/demo-code",
                                       "mixing-gym demo --preset micro --output runs/demo-micro",
                                       "mixing-gym demo --seeds 5 --output runs/demo-5seeds"])
    add_comparison_arguments(parser, seeds=2, output="runs/demo")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes that play the episodes (default: 2)")
    parser.add_argument("--learned", default=None,
                        help="comma-separated learned agents (default: agents.demo.LEARNED, the planner; dma_tuned "
                             "adds the Data Mixing Agent)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Run the demo and print its report, ending with what it found.

    Args:
        args: the parsed arguments.
    """
    from agents.demo import LEARNED, run_demo

    learned = LEARNED if args.learned is None else split_names(args.learned)
    result = run_demo(args.env, env_kwargs_of(args), args.seeds, args.output, workers=args.workers, seed=args.seed,
                      learned=learned)
    seconds = result.seconds
    print(f"Preparing {minutes_seconds(seconds['prepare'])}"
          + (f" (learning {', '.join(result.learned)} beside it: {minutes_seconds(seconds['learn'])})"
             if result.learned else "")
          + f"; {len(result.comparison.episodes)} episodes: {minutes_seconds(seconds['play'])} "
            f"({result.comparison.new_episodes} played now).")
    if result.left_out:
        print(f"Left out: {result.left_out}")
    print()
    report(result.comparison)
