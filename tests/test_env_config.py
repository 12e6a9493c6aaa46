"""The env's configuration (``EnvConfig``) and its randomness: arguments checked once, a cache key that ignores
where an episode runs, and an env that leaves the process's random generators and threads alone."""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import MICRO, TINY_DATA

import mixing_gym  # noqa: F401  (registers the envs)
from mixing_gym.env_config import EnvConfig, env_config, episode_cache_key


def test_a_misspelt_argument_names_the_closest_valid_one():
    with pytest.raises(TypeError, match=r"'num_step' \(did you mean 'num_steps'\?\).*its arguments are preset, "):
        gym.make("DataMixing-v1", num_step=8)
    with pytest.raises(TypeError, match="'colour'.*its arguments are"):
        env_config("DataMixing-v0", {"colour": "blue"})


def test_bad_values_are_errors_before_any_work():
    with pytest.raises(ValueError, match="Unknown action_mode"):
        env_config("DataMixing-v1", {"action_mode": "probabilities"})
    with pytest.raises(ValueError, match="target_epochs must be positive"):
        env_config("DataMixing-v1", {"target_epochs": 0})
    with pytest.raises(ValueError, match="is not a real env"):
        env_config("DataMixingSurrogate-v1", {})


def test_versions_differ_in_their_defaults_and_the_config_is_frozen():
    v0, v1 = env_config("DataMixing-v0"), env_config("mixing_gym:DataMixing-v1")
    assert (v0.aggregate, v0.target_epochs, v0.observe_epochs) == ("bpb", None, False)
    assert (v1.aggregate, v1.target_epochs, v1.observe_epochs, v1.eval_batch_size) == ("tasks", 4.0, True, 16)
    with pytest.raises(AttributeError):
        v1.preset = "micro"


def test_the_cache_key_holds_what_an_episode_records_and_not_where_it_runs():
    key = episode_cache_key("DataMixing-v1", {"preset": "micro"})
    assert key == episode_cache_key("DataMixing-v1", {"preset": "micro", "torch_threads": 1, "cache_dir": "/x",
                                                      "render_mode": "ansi", "auto_prepare": False})
    assert key == episode_cache_key("DataMixing-v1", {"preset": "micro", "aggregate": "tasks"})  # a default, given
    assert key != episode_cache_key("DataMixing-v1", {"preset": "micro", "reward": "target"})
    assert key != episode_cache_key("DataMixing-v0", {"preset": "micro"})
    assert episode_cache_key("DataMixing-v1", {"preset": MICRO}) == episode_cache_key(
        "DataMixing-v1", {"preset": EnvConfig(preset=MICRO).to_json()["preset"]})  # a preset object or its dict


def test_to_json_records_plain_values_and_refuses_objects():
    config = env_config("DataMixing-v1", {"preset": MICRO, "data_config": TINY_DATA})
    recorded = config.to_json(only_given={"preset": MICRO, "data_config": TINY_DATA})
    assert set(recorded) == {"preset", "data_config"} and recorded["data_config"]["vocab_size"] == TINY_DATA.vocab_size
    with pytest.raises(ValueError, match="'reward'.*cannot be recorded as JSON"):
        env_config("DataMixing-v1", {"reward": lambda s, t: s + t}).to_json()


def _global_states() -> tuple:
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), torch.get_num_threads()


def test_the_env_leaves_the_process_generators_and_threads_alone(prepared, cache_dir):
    env = gym.make("DataMixing-v0", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA, num_steps=2)
    actions = np.random.default_rng(0).uniform(-1, 1, (2, env.action_space.shape[0])).astype(np.float32)

    def episode() -> list[np.ndarray]:
        return [env.reset(seed=3)[0]] + [env.step(action)[0] for action in actions]

    before = _global_states()
    first = episode()
    after = _global_states()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]
    torch.manual_seed(99)  # still deterministic in the seed, whatever the global generators hold
    np.random.seed(99)
    again = episode()
    env.close()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
