"""Command-line options generated from a config class, and the config built back from the parsed arguments.

:func:`add_options` gives every keyword parameter of a dataclass (or of any class's ``__init__``) that has a
default and a plain type (``int``, ``float``, ``str``, ``bool``, or one of them ``| None``) an option
``--field-name``, with the help text of its ``Args:`` entry in the class docstring; :func:`options_from_args`
builds the object back. A field added to the config is then on the command line with no second copy of its
name, type, default or meaning.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

SCALARS = (int, float, str, bool)
METAVARS = {int: "N", float: "X", str: "TEXT"}
#: Sphinx roles (``:class:`~a.b.C``` reads C) and inline literals (````x```` reads x), for plain-text help.
_ROLE = re.compile(r":\w+:`(~?)([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_ENTRY = re.compile(r"^(\w+): (.*)$")


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, skip: tuple[str, ...] = (),
                rename: Mapping[str, str] | None = None) -> None:
    """Add an option for each keyword parameter of ``cls`` with a default and a plain type.

    A ``bool`` parameter becomes a switch to the other value: ``--name`` when its default is ``False``,
    ``--no-name`` when it is ``True``. Parameters of other types (a callable, an object) keep their defaults
    unless the caller sets them.

    Args:
        parser: the parser or argument group the options go to.
        cls: the dataclass (or class) whose parameters they set.
        skip: parameters the caller sets itself (a command's own ``--seed``, say).
        rename: option names (without ``--``) for parameters whose own name another option of the command
            already has.
    """
    documented = parameter_help(cls)
    for name, default, kind in _parameters(cls, skip):
        option = (rename or {}).get(name, name).replace("_", "-")
        text = documented.get(name, name.replace("_", " ")).rstrip(".").replace("%", "%%")
        dest = _dest(cls, name)
        if kind is bool:
            flag = f"--no-{option}" if default else f"--{option}"
            parser.add_argument(flag, dest=dest, action="store_false" if default else "store_true", default=default,
                                help=f"{text} (default: {default}; this option sets {not default})")
        else:
            parser.add_argument(f"--{option}", dest=dest, type=kind, default=default, metavar=METAVARS[kind],
                                help=f"{text} (default: {'none' if default is None else default})")


def options_from_args(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """``cls`` built from the options :func:`add_options` added and the parameters the caller sets.

    Args:
        cls: the class the options were generated from.
        args: the parsed arguments.
        given: the skipped parameters (and any the caller overrides).
    """
    prefix = f"{cls.__name__}."
    values = {key.removeprefix(prefix): value for key, value in vars(args).items() if key.startswith(prefix)}
    return cls(**{**values, **given})


def parameter_help(cls: type) -> dict[str, str]:
    """Each parameter's entry of the ``Args:`` section of ``cls``'s docstring, as one line of plain text.

    Args:
        cls: the documented class.
    """
    lines = (inspect.getdoc(cls) or "").splitlines()
    if "Args:" not in lines:
        return {}
    entries: dict[str, list[str]] = {}
    for line in lines[lines.index("Args:") + 1:]:
        if line and not line.startswith(" "):  # the next section (Raises:, Returns:) ends the arguments
            break
        entry = _ENTRY.match(line[4:]) if line.startswith("    ") and not line.startswith("     ") else None
        if entry:
            entries[entry.group(1)] = [entry.group(2)]
        elif entries and line.strip():
            entries[list(entries)[-1]].append(line.strip())
    return {name: _plain(" ".join(words)) for name, words in entries.items()}


def _plain(text: str) -> str:
    text = _ROLE.sub(lambda match: match.group(2).rpartition(".")[2] if match.group(1) else match.group(2), text)
    return _LITERAL.sub(r"\1", text)


def _dest(cls: type, name: str) -> str:
    # Namespaced by the class, so that a field never collides with a command's own option of the same name.
    return f"{cls.__name__}.{name}"


def _parameters(cls: type, skip: tuple[str, ...]) -> Iterator[tuple[str, Any, type]]:
    """``(name, default, type)`` of each keyword parameter of ``cls`` with a default and a plain type, but ``skip``."""
    hints = typing.get_type_hints(cls if dataclasses.is_dataclass(cls) else cls.__init__)
    for parameter in inspect.signature(cls).parameters.values():
        kind = _scalar(hints.get(parameter.name))
        if parameter.name not in skip and parameter.default is not inspect.Parameter.empty and kind is not None:
            yield parameter.name, parameter.default, kind


def _scalar(hint: Any) -> type | None:
    """The type an option's text is converted with: ``hint`` itself, or ``X`` of ``X | None`` (``None``: no
    option holds a value of ``hint``, a callable or an object)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        hint = members[0] if len(members) == 1 else hint
    return hint if hint in SCALARS else None
