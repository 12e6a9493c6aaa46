"""The wheel is complete: built from the repository, installed apart from it, it runs the README's quick start.

The editable install of the suite finds files in the repository that a wheel may lack (the lm-eval task
YAML files are package data, not modules), so this test builds the package, installs the wheel into a
folder of its own and plays an episode in a subprocess that can only import that copy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import MICRO, TINY_DATA

REPO = Path(__file__).resolve().parent.parent

#: The README quick start (random actions until the episode ends) at the suite's micro preset and tiny
#: data, from the cache the session prepared (``$MIXING_GYM_CACHE``; ``auto_prepare=False`` fails rather
#: than preparing a new one), after checking that ``mixing_gym`` is the installed wheel's copy.
QUICK_START = """
import json, sys
from pathlib import Path

import gymnasium as gym
import mixing_gym
from mixing_gym.tasks import TASKS_DIR

site, preset, data_config = Path(sys.argv[1]).resolve(), json.loads(sys.argv[2]), json.loads(sys.argv[3])
assert Path(mixing_gym.__file__).resolve().is_relative_to(site), mixing_gym.__file__
assert TASKS_DIR.resolve().is_relative_to(site) and any(TASKS_DIR.glob("*.yaml")), TASKS_DIR

env = gym.make("DataMixing-v0", preset=preset, data_config=data_config, torch_threads=1, auto_prepare=False)
env.action_space.seed(0)
observation, info = env.reset(seed=0)
terminated = truncated = False
steps = 0
while not (terminated or truncated):
    observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
    steps += 1
assert steps == env.unwrapped.num_steps and env.observation_space.contains(observation)
from mixing_gym.reference import reference_surrogate_path

for field in ("math", "code"):  # the reference surrogates the installed package ships
    assert reference_surrogate_path(target_field=field).resolve().is_relative_to(site)
    gym.make("DataMixingSurrogate-v1", target_field=field).reset(seed=0)
print(json.dumps({"steps": steps, "source_score": info["source_score"], "target_score": info["target_score"]}))
"""


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``command``; on failure, fail the test with its output."""
    result = subprocess.run(command, check=False, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_wheel_holds_the_task_files_and_plays_an_episode_outside_the_repo(tmp_path, prepared, cache_dir):
    # Without --sdist/--wheel, build makes the sdist and then the wheel from the unpacked sdist: the
    # release path, which also checks the sdist, and which leaves no build/ folder in the repository
    # (setuptools keeps stale files there, and a later wheel would ship modules removed since).
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)])
    (wheel,) = dist.glob("mixing_gym-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    tasks = {f"mixing_gym/tasks/{path.name}" for path in (REPO / "mixing_gym" / "tasks").glob("*.yaml")}
    assert tasks and tasks <= names, sorted(tasks - names)
    reference = {f"mixing_gym/reference/surrogate-{field}small/{name}"
                 for field in ("v1-", "code-v1-", "v2-", "code-v2-")
                 for name in ("surrogate.json", "arrays.npz", "card.json")}
    reference |= {f"mixing_gym/reference/policy-episodes-{field}small/round{number}/data/{name}"
                  for field in ("v1-", "code-v1-") for number in range(3)
                  for name in ("metadata.json", "0/metadata.json", "0/part-0.arrow")}
    reference |= {f"mixing_gym/reference/trajectories-{field}small/data/{name}" for field in ("v1-", "code-v1-")
                  for name in ("metadata.json", "0/metadata.json", "0/part-0.arrow", "127/part-0.arrow")}
    assert reference <= names, sorted(reference - names)

    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)])
    # Outside the repository, with only the installed copy ahead of site-packages (the editable install's
    # finder comes after PYTHONPATH, so the assertion in QUICK_START says which copy was imported).
    environment = {**os.environ, "PYTHONPATH": str(site), "MIXING_GYM_CACHE": str(cache_dir)}
    result = _run([sys.executable, "-c", QUICK_START, str(site), json.dumps(dataclasses.asdict(MICRO)),
                   json.dumps(dataclasses.asdict(TINY_DATA))], cwd=tmp_path, env=environment, timeout=300)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == MICRO.num_steps
