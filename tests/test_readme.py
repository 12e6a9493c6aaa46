"""Every Python snippet of the README runs as saved, as a script, on the ``micro`` preset.

The snippets run in README order, each in a fresh interpreter (``python snippet.py``, as a user saves
and runs one), in one scratch folder, so a later snippet may read what an earlier one wrote (the
surrogate snippet fits on the trajectories the collection snippet records). They use the real default
data config of ``micro``, prepared once in the suite's cache (``$MIXING_GYM_CACHE``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SNIPPET = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def readme_snippets() -> list[tuple[int, str]]:
    """``(line, code)`` of every Python block of the README."""
    text = README.read_text()
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in SNIPPET.finditer(text)]


def test_the_readme_has_snippets():
    snippets = readme_snippets()
    assert len(snippets) >= 6
    assert all("preset=\"small\"" not in code and "\"small\")" not in code for _, code in snippets), \
        "a README snippet runs the small preset: keep snippets on micro so the suite can run them"


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
