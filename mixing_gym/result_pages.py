"""The results pages of the documentation site, ``docs/results/<study>.md``: written by each study's ``report`` step
from what it printed, so that no number on them is copied by hand.

A page holds the study's docstring, then one section per report command (a study reported with other arguments,
``--space code-v1``, keeps a section of each), each between ``<!-- report: COMMAND -->`` and ``<!-- end report -->``.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from pathlib import Path

SECTION = re.compile(r"<!-- report: (.+?) -->\n(.*?)\n<!-- end report -->\n", re.DOTALL)


def write_result_page(page: Path, title: str, study_doc: str, study_file: str, command: str, text: str) -> None:
    """Write what ``command``, a report step, printed as its section of ``page``, under the study's docstring,
    keeping the sections of the report's other commands; paths from the repository root become the page's links.

    Args:
        page: the page, ``docs/results/<study>.md``.
        title: the page's title.
        study_doc: the study's module docstring (its first line is the page's summary).
        study_file: the study's ``__file__`` (names the study on the page).
        command: the report step's command line.
        text: what it printed (Markdown).
    """
    sections = dict(SECTION.findall(page.read_text())) if page.exists() else {}
    text = f"## `{command}`\n\n{text.strip()}"
    sections[command] = text.replace("](docs/results/", "](").replace("](docs/", "](../")
    summary, about = study_doc.split("\n", 1)
    about = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", about).replace("::\n", ":\n").strip("\n")  # roles as code
    body = "".join(f"<!-- report: {key} -->\n{value}\n<!-- end report -->\n" for key, value in sections.items())
    study = Path(study_file).parent.name
    page.write_text(f"<!-- Written by the report step of experiments/{study}/study.py: edit the study, not this "
                    f"page. -->\n# {title}\n\n{summary}\n\n{about}\n\n{body}")


def publish_report(report: Callable[[], None], page: Path, title: str, study_doc: str, study_file: str,
                   command: str) -> None:
    """Run a study's report step, print what it printed under its command line, and write it as the command's
    section of the study's page (:func:`write_result_page`).

    Args:
        report: prints the study's tables in Markdown.
        page: the page, ``docs/results/<study>.md``.
        title: the page's title.
        study_doc: the study's module docstring.
        study_file: the study's ``__file__``.
        command: the report step's command line.
    """
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        report()
    print(f"`{command}`\n\n{printed.getvalue()}", end="")
    write_result_page(page, title, study_doc, study_file, command, printed.getvalue())
