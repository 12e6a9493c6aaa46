"""``mixing-gym evaluate``: agents of the registry played on the same seeds, compared in a table and plots."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agents.cli.arguments import (
    add_backend_arguments,
    add_command,
    add_env_arguments,
    backend_of,
    env_kwargs_of,
    split_names,
    target_field_of,
)

if TYPE_CHECKING:
    from agents.base import Agent
    from agents.harness import Comparison
    from agents.registry import AgentResources

DEFAULT_AGENTS = "uniform,source_only,target_only,fixed_ratio,linear_schedule,odm,doremi"
#: The files of a comparison in its output folder, as the report lists them.
RESULT_FILES = ("results.md", "results.csv", "episodes.csv", "mixtures.png", "scores.png", "frontier.png", "episodes/")

COMPARISON_FILES = """\
  results.md, results.csv  per agent: mean and 95% interval of the final
                           source, target and balanced scores, the return
                           and the target share
  episodes.csv             one row per episode
  mixtures.png             each agent's mixture over the steps
  scores.png               source and target scores over the steps
  frontier.png             final source score against target score
  episodes/                one JSON per finished episode; a rerun reuses
                           them, so an interrupted comparison resumes"""

DESCRIPTION = f"""\
Play every agent of --agents (`mixing-gym agents` lists them) for --seeds
episodes of --env (DataMixing-v1 by default), on the same seeds 0..N-1, and
compare them. Agents that learn first do so here: regmix and search from
--runs real episodes, dma from trajectories, planner on a surrogate; ppo
and a trained dma or planner load --model. Prints the table and which
agent has the best balanced score (the mean of the source and target
improvements) and whether its lead is larger than the 95% confidence
intervals. Writes into --output:
{COMPARISON_FILES}
  <agent>_runs/            the real runs an agent learned from (reused)"""


def add_comparison_arguments(parser: argparse.ArgumentParser, seeds: int, output: str) -> None:
    """The env, ``--seeds``, ``--output`` and ``--seed`` of a comparison (``evaluate``, ``demo``).

    Args:
        parser: the command's parser.
        seeds: ``--seeds``'s default.
        output: ``--output``'s default.
    """
    add_env_arguments(parser, "each env process")
    parser.add_argument("--seeds", type=int, default=seeds,
                        help=f"episodes per agent, on seeds 0..N-1; 2 or more give 95%% intervals (default: {seeds})")
    parser.add_argument("--output", default=output,
                        help=f"results folder; finished episodes there are reused (default: {output})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of what the agents learn: their real runs, training and plans (default: 0)")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``evaluate``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "evaluate", "compare agents on the same seeds: table, plots, episodes",
                         DESCRIPTION, ["mixing-gym evaluate --preset micro --seeds 5",
                                       "mixing-gym evaluate --agents uniform,fixed_ratio@0.25,regmix --runs 16",
                                       "mixing-gym evaluate --agents uniform,ppo --model runs/ppo/ppo_final.zip",
                                       "mixing-gym evaluate --agents regmix --backend ray --address auto"])
    add_comparison_arguments(parser, seeds=3, output="runs/compare")
    parser.add_argument("--agents", default=DEFAULT_AGENTS,
                        help=f"comma-separated agent names; NAME@VALUE sets an agent's parameter, as in "
                             f"fixed_ratio@0.25 (default: {DEFAULT_AGENTS.replace(',', ', ')})")
    resources = parser.add_argument_group("what the agents learn from (`mixing-gym agents` says who needs what)")
    resources.add_argument("--model", dest="models", action="append", default=[], type=_model,
                           metavar="[AGENT=]PATH",
                           help="a saved model, from `mixing-gym train-agent`: ppo's zip, dma's folder or "
                                "planner's plan; AGENT=PATH gives one agent its own (repeat the option)")
    resources.add_argument("--ppo-model", dest="models", action="append", type=lambda path: ("ppo", path),
                           metavar="PATH", help="the same as --model ppo=PATH")
    resources.add_argument("--dma-model", dest="models", action="append", type=lambda path: ("dma", path),
                           metavar="PATH", help="the same as --model dma=PATH")
    resources.add_argument("--surrogate", default=None,
                           help="the surrogate folder the planner plans on (default: the field's reference)")
    resources.add_argument("--trajectories", default=None,
                           help="the trajectories dma trains on (default: the field's reference ones)")
    resources.add_argument("--runs", type=int, default=32,
                           help="real episodes regmix and search learn from, kept in --output/<agent>_runs "
                                "(default: 32; the search proposes --workers trials at a time)")
    add_backend_arguments(parser)
    parser.set_defaults(func=run)


def _model(text: str) -> tuple[str | None, str]:
    """``--model``'s value as ``(agent, path)``; ``agent`` is ``None`` for a model of every agent."""
    agent, separator, path = text.partition("=")
    return (agent, path) if separator else (None, text)


def build_agents(names: Sequence[str], resources: AgentResources, output: str | Path,
                 models: Sequence[tuple[str | None, str]] = ()) -> dict[str, Agent]:
    """The registry's agents of ``names``, by the names that their files take (``fixed_ratio@0.25`` as
    ``fixed_ratio-0.25``).

    Args:
        names: registry names, ``name@value`` included; all are checked before any agent starts learning.
        resources: what the agents may draw on; each gets its own ``run_store``, ``output/<agent>_runs``.
        output: the comparison's folder.
        models: ``(agent, path)`` of the saved models; an agent takes the one named for it, else the one named
            ``None``.
    """
    from agents.registry import agent_spec, make_agent

    for name in [*names, *(agent for agent, _ in models if agent is not None)]:
        agent_spec(name)
    saved = dict(models)
    agents = {}
    for name in names:
        label = name.replace("@", "-")  # "@" cannot name the agent's files
        model = saved.get(name, saved.get(name.partition("@")[0], saved.get(None)))
        agents[label] = make_agent(name, dataclasses.replace(resources, run_store=Path(output) / f"{label}_runs",
                                                             model=model))
    return agents


def report(comparison: Comparison) -> None:
    """Print the comparison's table, where its files are, and, last, what it found.

    Args:
        comparison: what :func:`agents.harness.evaluate_agents` returned.
    """
    from agents.findings import finding

    print((comparison.output_dir / "results.md").read_text())
    print(f"{comparison.new_episodes} new episodes; results and plots in {comparison.output_dir}/:")
    for name in RESULT_FILES:
        print(f"  {comparison.output_dir}/{name}")  # not a Path join, which drops the slash of "episodes/"
    print()
    print(finding(comparison.summary))


def run(args: argparse.Namespace) -> None:
    """Build the agents, play them and print the report.

    Args:
        args: the parsed arguments.
    """
    from agents.harness import evaluate_agents
    from agents.registry import AgentResources

    env_kwargs = env_kwargs_of(args)
    backend = backend_of(args)
    resources = AgentResources(env_id=args.env, env_kwargs=env_kwargs, target_field=target_field_of(args),
                               seed=args.seed, runs=args.runs, backend=backend, trajectories=args.trajectories,
                               surrogate=args.surrogate)
    agents = build_agents(split_names(args.agents), resources, args.output, args.models)
    report(evaluate_agents(agents, args.seeds, env_kwargs, args.output, env_id=args.env, backend=backend))
