"""DataMixing-v0 stays reproducible: a seeded ``micro`` episode recorded before the layout refactor is
replayed and must come out the same, observation for observation, reward for reward, ``info`` for ``info``.

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
        assert new == old, f"step {number} differs from the recording"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    with tempfile.TemporaryDirectory() as directory:
        RECORDING.write_text(json.dumps(play(directory), indent=1) + "\n")
    print(f"wrote {RECORDING}")
