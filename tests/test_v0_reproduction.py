"""DataMixing-v0 stays reproducible: a seeded ``micro`` episode recorded before the layout refactor is
replayed and must come out the same, observation for observation, reward for reward, ``info`` for ``info``
(floats to 1e-3 relative or 1e-4 absolute: torch's CPU kernels differ between instruction sets).

The recording (``tests/data/v0_micro_episode.json``) was made with ``python tests/test_v0_reproduction.py``
on the test suite's tiny data config, from a fresh cache, in fp32 on one torch thread so that the numbers
do not depend on bf16 support or thread scheduling. Re-record it only when v0's behaviour is meant to change, and say so
in the Version History of ``DataMixingEnv``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

RECORDING = Path(__file__).parent / "data" / "v0_micro_episode.json"
SEED = 7


def play(cache_dir: str | Path) -> dict:
    """One seeded v0 episode on the suite's tiny micro config with fixed, seeded actions, as plain JSON values."""
    import gymnasium as gym

    import mixing_gym  # noqa: F401  (registers DataMixing-v0)
    from tests.conftest import MICRO, TINY_DATA

    env = gym.make("DataMixing-v0", preset=MICRO, data_config=TINY_DATA, cache_dir=cache_dir, precision="fp32",
                   torch_threads=1)
    try:
        rng = np.random.default_rng(SEED)
        observation, info = env.reset(seed=SEED)
        steps = [{"observation": observation.tolist(), "info": _plain(info)}]
        terminated = False
        while not terminated:
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            observation, reward, terminated, truncated, info = env.step(action)
            steps.append({"action": action.tolist(), "observation": observation.tolist(), "reward": reward,
                          "terminated": terminated, "truncated": truncated, "info": _plain(info)})
        return {"seed": SEED, "observation_names": list(env.unwrapped.observation_names), "steps": steps}
    finally:
        env.close()


def _plain(info: dict) -> dict:
    return json.loads(json.dumps(info, default=lambda value: np.asarray(value).tolist()))


def test_v0_episode_reproduces_the_recording(tmp_path):
    # A cache of its own: the base checkpoint must be pretrained as in the recording, on one torch thread
    # (the session's shared cache pretrains it at the default thread count, which changes its floats).
    recorded = json.loads(RECORDING.read_text())
    replayed = json.loads(json.dumps(play(tmp_path)))
    assert replayed["observation_names"] == recorded["observation_names"]
    assert len(replayed["steps"]) == len(recorded["steps"])
    for number, (new, old) in enumerate(zip(replayed["steps"], recorded["steps"])):
        _assert_same(new, old, f"step {number}")


#: torch's CPU kernels differ by instruction set: on a machine with AVX-512 the episode's floats came out at
#: most 5e-5 from the recording's (bits per byte near 3.4) and 5e-4 relative (improvements near 0.006). A change
#: to v0's data, sampler, training or scoring moves them by 1e-2 and more.
RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE = 1e-3, 1e-4


def _assert_same(new, old, where: str) -> None:
    """``new`` equals ``old`` in structure, keys, strings and integers, and in floats to the tolerances."""
    assert type(new) is type(old), f"{where}: {new!r} != {old!r}"
    if isinstance(old, dict):
        assert new.keys() == old.keys(), f"{where}: keys differ from the recording"
        for key in old:
            _assert_same(new[key], old[key], f"{where}/{key}")
    elif isinstance(old, list):
        assert len(new) == len(old), f"{where}: length differs from the recording"
        for index, (a, b) in enumerate(zip(new, old)):
            _assert_same(a, b, f"{where}[{index}]")
    elif isinstance(old, float):
        close = pytest.approx(old, rel=RELATIVE_TOLERANCE, abs=ABSOLUTE_TOLERANCE)
        assert new == close, f"{where} differs from the recording"
    else:
        assert new == old, f"{where} differs from the recording"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    with tempfile.TemporaryDirectory() as directory:
        RECORDING.write_text(json.dumps(play(directory), indent=1) + "\n")
    print(f"wrote {RECORDING}")
