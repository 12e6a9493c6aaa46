"""DataMixing-v0 on the micro preset: API checks, determinism, vectorisation, bad input, rendering."""

from __future__ import annotations

import functools
import gc
import warnings
import weakref

import gymnasium as gym
import numpy as np
import pytest
from conftest import MICRO, TINY_DATA

import mixing_gym  # noqa: F401  (registers the env)
from mixing_gym.storage import CacheError


@pytest.fixture(scope="module")
def env_kwargs(prepared, cache_dir):
    return {"preset": MICRO, "cache_dir": cache_dir, "data_config": TINY_DATA}


@pytest.fixture(scope="module")
def env(env_kwargs):
    environment = gym.make("DataMixing-v0", **env_kwargs)
    yield environment
    environment.close()


def _episode(env, seed, actions):
    observation, info = env.reset(seed=seed)
    trace = [(observation, 0.0, info)]
    for action in actions:
        observation, reward, _terminated, _truncated, info = env.step(action)
        trace.append((observation, reward, info))
    return trace


def test_registration_and_spaces(env):
    assert gym.spec("DataMixing-v0").entry_point == "mixing_gym.envs.data_mixing:DataMixingEnv"
    unwrapped = env.unwrapped
    k = unwrapped.num_domains
    assert env.action_space == gym.spaces.Box(-1, 1, (k,), np.float32)
    assert env.observation_space.shape == (len(unwrapped.observation_names),)
    assert list(unwrapped.observation_names[:k]) == [f"weight/{d}" for d in unwrapped.domain_names]
    assert unwrapped.observation_names[-3:] == ("score/source", "score/target", "progress")
    assert set(unwrapped.domain_fields) == {"source", "target"}


def test_gymnasium_and_sb3_checkers_pass_without_warnings(env):
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check(env.unwrapped, skip_render_check=True)
        sb3_check(env.unwrapped, warn=True)
    ours = [w for w in caught if "gymnasium" in w.filename or "stable_baselines3" in w.filename]
    assert not ours, [str(w.message) for w in ours]


def test_same_seed_and_actions_give_the_same_run(env):
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(MICRO.num_steps)]
    first, second = _episode(env, 11, actions), _episode(env, 11, actions)
    for (obs_a, reward_a, info_a), (obs_b, reward_b, info_b) in zip(first, second):
        assert np.array_equal(obs_a, obs_b) and reward_a == reward_b
        assert gym.utils.env_checker.data_equivalence(info_a, info_b)
    other = _episode(env, 12, actions)
    assert not np.array_equal(first[-1][0], other[-1][0])


def test_episode_ends_when_the_budget_is_spent_and_returns_sum_to_the_objective(env):
    env.reset(seed=0)
    rewards, terminated, steps = [], False, 0
    while not terminated:
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
        steps += 1
        assert isinstance(reward, float) and truncated is False
        assert np.isclose(info["mixture"].sum(), 1.0)
        assert info["tokens_per_domain"].sum() == MICRO.tokens_per_step
    assert steps == MICRO.num_steps and observation[-1] == 1.0
    assert np.isclose(sum(rewards), info["objective"])
    assert info["tokens_trained"] == MICRO.cpt_tokens
    assert "total" in env.unwrapped.last_step_timings and "total" not in info
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(env.action_space.sample())


def test_target_only_training_is_rewarded_by_the_target_objective(env_kwargs):
    env = gym.make("DataMixing-v0", reward="target", action_mode="weights", benchmarks="bpb", **env_kwargs)
    weights = np.asarray([f == "target" for f in env.unwrapped.domain_fields], dtype=np.float32)
    trace = _episode(env, 0, [weights] * MICRO.num_steps)
    assert sum(reward for _, reward, _ in trace) == pytest.approx(trace[-1][2]["target_score"])
    assert trace[-1][2]["target_score"] > 0
    env.close()


def _with_first(value: float):
    return lambda k: np.r_[np.float32(value), np.zeros(k - 1, np.float32)]


@pytest.mark.parametrize("make_action, message", [
    (lambda k: np.zeros(k + 1, np.float32), "shape"),
    (lambda k: np.zeros((1, k), np.float32), "shape"),
    (_with_first(np.nan), "NaN"),
    (_with_first(np.inf), "infinite"),
    (lambda k: np.array(["a"] * k), "dtype"),
])
def test_bad_actions_are_rejected_and_the_env_stays_usable(env, make_action, message):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(make_action(env.unwrapped.num_domains))
    env.reset(seed=0)
    assert np.all(np.isfinite(env.step(env.action_space.sample())[0]))


def test_weights_mode_rejects_zero_and_negative_weights(env_kwargs):
    env = gym.make("DataMixing-v0", action_mode="weights", benchmarks="bpb", **env_kwargs).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="All weights are zero"):
        env.step(np.zeros(env.num_domains, np.float32))
    with pytest.raises(ValueError, match="negative"):
        env.step(np.full(env.num_domains, -1.0, np.float32))
    _, _, _, _, info = env.step(np.arange(env.num_domains, dtype=np.float32))
    assert np.allclose(info["mixture"], np.arange(env.num_domains) / np.arange(env.num_domains).sum())
    env.close()


def test_step_before_reset(env_kwargs):
    env = gym.make("DataMixing-v0", benchmarks="bpb", **env_kwargs).unwrapped
    with pytest.raises(RuntimeError, match="Call reset"):
        env.step(env.action_space.sample())
    env.close()


def test_bad_arguments_and_missing_cache(env_kwargs, tmp_path):
    with pytest.raises(ValueError, match="Unknown reward 'best'"):
        gym.make("DataMixing-v0", reward="best", **env_kwargs)
    with pytest.raises(CacheError, match="mixing-gym prepare --space math --preset micro"):
        gym.make("DataMixing-v0", preset="micro", cache_dir=tmp_path, auto_prepare=False)


def test_render_modes(env_kwargs):
    env = gym.make("DataMixing-v0", render_mode="ansi", benchmarks="bpb", **env_kwargs)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    text = env.render()
    assert "math_arithmetic" in text and "target_score" in text
    env.close()
    env = gym.make("DataMixing-v0", render_mode="rgb_array", benchmarks="bpb", **env_kwargs)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    picture = env.render()
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert picture.std() > 0
    env.close()


def test_close_releases_the_model(env_kwargs):
    env = gym.make("DataMixing-v0", benchmarks="bpb", **env_kwargs)
    model = weakref.ref(env.unwrapped.run.model)
    env.close()
    gc.collect()
    assert model() is None


def test_async_vector_env_and_sb3_subproc_vec_env(env_kwargs):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    make = functools.partial(gym.make, "mixing_gym:DataMixing-v0", benchmarks="bpb", **env_kwargs)
    vector = gym.vector.AsyncVectorEnv([make, make], context="forkserver")
    observations, _ = vector.reset(seed=[0, 1])
    observations, rewards, *_ = vector.step(vector.action_space.sample())
    assert observations.shape[0] == 2 and np.all(np.isfinite(rewards))
    vector.close()
    vec = SubprocVecEnv([make, make], start_method="forkserver")
    vec.reset()
    observations, rewards, _dones, _infos = vec.step(np.stack([vec.action_space.sample() for _ in range(2)]))
    assert observations.shape[0] == 2 and np.all(np.isfinite(rewards))
    assert vec.get_attr("num_domains") == [vec.action_space.shape[0]] * 2
    vec.close()


@pytest.mark.slow
def test_two_hundred_steps_do_not_grow_memory(env_kwargs):
    import psutil

    env = gym.make("DataMixing-v0", **env_kwargs)
    process = psutil.Process()

    def run(steps: int) -> None:
        env.reset(seed=0)
        for _ in range(steps):
            _, _, terminated, _, _ = env.step(env.action_space.sample())
            if terminated:
                env.reset()

    run(20)
    gc.collect()
    before = process.memory_info().rss
    run(200)
    gc.collect()
    growth = process.memory_info().rss - before
    env.close()
    assert growth < 64 * 2**20, f"memory grew by {growth / 2**20:.1f} MiB over 200 steps"
