"""MkDocs hook: tables generated at build time, so that no page copies a number by hand.

- ``<!-- csv: results/thread_policy.csv -->`` becomes that CSV (a path relative to ``docs/``) as a Markdown table,
  with a link to the file. Options, after the path: ``columns=a,b`` keeps those columns, ``group=a,b value=c``
  gives the count, median, min and max of ``c`` per group (in the CSV's order), ``floatfmt=,.0f`` formats the
  numbers (tabulate's format, default ``.4g``).
- ``<!-- agents-registry -->`` becomes the agent registry (``agents.registry.REGISTRY``): each agent's name, what it
  needs before it acts, where the command line takes that from, whether it acts on any domain space, what it does.
- ``<!-- import-contracts -->`` becomes the import-linter contracts of ``pyproject.toml`` (``lint-imports`` checks
  them), each with its layers (highest first) or its forbidden imports.

A missing file or column fails the build.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from pathlib import Path

import pandas as pd

CSV = re.compile(r"<!-- csv: (.+?) -->")
REGISTRY = "<!-- agents-registry -->"
CONTRACTS = "<!-- import-contracts -->"


def csv_table(arguments: str, docs_dir: Path, page_path: str) -> str:
    """The Markdown table of a ``csv:`` marker.

    Args:
        arguments: the marker's text: the CSV's path relative to ``docs/``, then its options.
        docs_dir: the docs folder.
        page_path: the page's path relative to ``docs/`` (for the link to the CSV).
    """
    path, *rest = shlex.split(arguments)
    options = dict(option.split("=", 1) for option in rest)
    frame = pd.read_csv(docs_dir / path)
    if "group" in options:
        keys = options["group"].split(",")
        frame = (frame.groupby(keys, sort=False)[options["value"]].agg(["count", "median", "min", "max"])
                 .reset_index().rename(columns={"count": "windows" if "window" in frame else "rows",
                                                "median": f"{options['value']}, median"}))
    if "columns" in options:
        frame = frame[options["columns"].split(",")]
    link = posixpath.relpath(path, posixpath.dirname(page_path) or ".")
    table = frame.to_markdown(index=False, floatfmt=options.get("floatfmt", ".4g"))
    return f"{table}\n\n<small>Generated from [`{Path(path).name}`]({link}) when the site is built.</small>\n"


def registry_table() -> str:
    """The agent registry as a Markdown table."""
    from agents.cli.agents import SOURCES
    from agents.registry import REGISTRY as SPECS

    lines = ["| agent | needs before it acts | from the command line | acts on | what it does |",
             "|---|---|---|---|---|"]
    for spec in SPECS.values():
        source = SOURCES.get(spec.needs.name, "-").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| `{spec.name}` | {spec.needs.value} | {source} | "
                     f"{'the space it learned on' if spec.space_bound else 'any domain space'} | {spec.summary} |")
    return "\n".join(lines) + "\n\n<small>Generated from `agents.registry.REGISTRY` when the site is built.</small>\n"


def contracts_text(pyproject: Path) -> str:
    """The import-linter contracts of ``pyproject``, in Markdown.

    Args:
        pyproject: the project's ``pyproject.toml``.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    contracts = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]["contracts"]
    parts = []
    for contract in contracts:
        parts.append(f"**{contract['name']}** ({contract['type']})\n")
        if contract["type"] == "layers":
            where = f" inside `{', '.join(contract['containers'])}`" if contract.get("containers") else ""
            parts.append(f"Layers{where}, each importing only the layers below it (`|`: side by side, "
                         "independent of each other):\n")
            parts += [f"{index}. `{layer}`" for index, layer in enumerate(contract["layers"], start=1)]
        else:
            parts.append(f"`{'`, `'.join(contract['source_modules'])}` import none of "
                         f"`{'`, `'.join(contract['forbidden_modules'])}`"
                         + (f" (allowed: `{'`, `'.join(contract['ignore_imports'])}`)"
                            if contract.get("ignore_imports") else "") + ".")
        parts.append("")
    note = "<small>Generated from `[tool.importlinter]` in `pyproject.toml` when the site is built.</small>"
    return "\n".join(parts) + note + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs_dir = Path(config["docs_dir"])
    markdown = CSV.sub(lambda match: csv_table(match.group(1), docs_dir, page.file.src_uri), markdown)
    if REGISTRY in markdown:
        markdown = markdown.replace(REGISTRY, registry_table())
    if CONTRACTS in markdown:
        pyproject = Path(config["config_file_path"]).parent / "pyproject.toml"
        markdown = markdown.replace(CONTRACTS, contracts_text(pyproject))
    return markdown
