"""The README: every Python snippet runs as saved, as a script, on the ``micro`` preset; its headline table is what
the headline study's report writes.

The snippets run in README order, each in a fresh interpreter (``python snippet.py``, as a user saves
and runs one), in one scratch folder, so a later snippet may read what an earlier one wrote. They use the real
default data config of ``micro``, prepared once in the suite's cache (``$MIXING_GYM_CACHE``).

The headline table between ``<!-- headline:start -->`` and ``<!-- headline:end -->`` is generated: ``python
experiments/headline_v1/study.py report`` rewrites it from ``docs/results/headline_v1_small.csv``, and the test
below checks that the README holds what that report would write (it reads the CSV only).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
HEADLINE_STUDY = ROOT / "experiments" / "headline_v1" / "study.py"
SNIPPET = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def readme_snippets() -> list[tuple[int, str]]:
    """``(line, code)`` of every Python block of the README."""
    text = README.read_text()
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in SNIPPET.finditer(text)]


def test_the_readme_has_snippets():
    snippets = [code for _, code in readme_snippets()]
    assert any('gym.make("DataMixing-v1"' in code for code in snippets), "the real env's quick start"
    assert any('gym.make("DataMixingSurrogate-v6"' in code for code in snippets), "the surrogate's quick start"
    assert any("evaluate_agents" in code or "make_agent" in code for code in snippets), "an agent or harness snippet"
    assert all("preset=\"small\"" not in code and "\"small\")" not in code for code in snippets), \
        "a README snippet runs the small preset: keep snippets on micro so the suite can run them"


def test_the_readme_headline_is_what_the_headline_report_writes():
    # The study checks its own table (a test imports no study): its check-readme step writes nothing.
    result = subprocess.run([sys.executable, str(HEADLINE_STUDY), "check-readme"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_every_readme_snippet_runs_as_a_script(tmp_path):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for number, (line, code) in enumerate(readme_snippets(), start=1):
        script = tmp_path / f"snippet_{number}.py"
        script.write_text(code)
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, (f"README snippet {number} (line {line}) failed:\n{code}\n"
                                        f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
        assert "leaked semaphore" not in result.stderr, f"README snippet {number} (line {line}) leaks: close its env"
