"""``mixing-gym agents``: the agent registry, grouped by what each agent needs before it acts."""

from __future__ import annotations

import argparse
import textwrap

from agents.cli.arguments import add_command

DESCRIPTION = """\
List the agents that evaluate's --agents takes, from the registry
(agents.registry): for each, what it needs before it acts, whether it acts
on any domain space or only on the one it learned on, and what it does.
Writes nothing."""

#: Where each need comes from on the command line, by the name of its ``agents.registry.Need``.
SOURCES = {
    "RUNS": "--runs N, played first, kept in --output/<agent>_runs",
    "TRAJECTORIES": "--trajectories DIR, else the reference ones; --model to load",
    "SURROGATE": "--surrogate DIR, else the reference one; --model: a saved plan",
    "SAVED_MODEL": "--model PATH, from `mixing-gym train-agent`",
}
NAME_WIDTH, SPACE_WIDTH, WIDTH = 18, 7, 79


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``agents``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "agents", "list the agents, what each needs and does", DESCRIPTION,
                         ["mixing-gym agents"])
    parser.set_defaults(func=run)


def describe_registry() -> str:
    """The registry as text lines of at most 79 columns, grouped by need."""
    from agents.registry import REGISTRY, Need

    indent = " " * (2 + NAME_WIDTH + 2 + SPACE_WIDTH + 2)
    lines = ["Agents of the registry (mixing-gym evaluate --agents NAME,...; NAME@VALUE",
             "sets an agent's parameter). space: any, it acts on every domain space;",
             "learned, only on the one it learned on."]
    for need in Need:
        specs = [spec for spec in REGISTRY.values() if spec.needs is need]
        if not specs:
            continue
        source = SOURCES.get(need.name)
        lines += ["", *textwrap.wrap(f"needs {need.value}" + (f" ({source})" if source else ""), WIDTH,
                                     subsequent_indent="    ")]
        for spec in specs:
            row = f"  {spec.name:<{NAME_WIDTH}}  {'learned' if spec.space_bound else 'any':<{SPACE_WIDTH}}  "
            lines += textwrap.wrap(spec.summary, WIDTH, initial_indent=row, subsequent_indent=indent)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    """Print the registry.

    Args:
        args: the parsed arguments (none).
    """
    print(describe_registry())
