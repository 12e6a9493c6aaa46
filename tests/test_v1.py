"""DataMixing-v1 on micro: task benchmarks as feedback, the math-v1 space, finite target data with epochs observed."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import MICRO, TINY_DATA, assert_task_aware_mixture_feeds_every_task

import mixing_gym  # noqa: F401  (registers the envs)
from mixing_gym.layout import MixingLayout, field_scores


@pytest.fixture(scope="module")
def env(cache_dir):
    environment = gym.make("DataMixing-v1", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA,
                           action_mode="weights", torch_threads=1)
    yield environment
    environment.close()


def test_layout_has_tasks_domains_and_epochs(env):
    layout = MixingLayout.of(env)
    assert layout.num_domains >= 24 and {"source", "target"} == set(layout.domain_fields)
    tasks = [b for b in layout.benchmarks if b.kind == "task"]
    assert {b.field for b in tasks} == {"source", "target"} and len(tasks) >= 6
    assert layout.aggregate == "tasks" and layout.observe_epochs
    assert layout.observation_names[-layout.num_domains:] == tuple(f"epochs/{d}" for d in layout.domain_names)
    assert env.observation_space.shape == (2 * layout.num_domains + layout.num_benchmarks + 3,)


def test_rewards_come_from_the_tasks_and_epochs_count_repeats(env):
    layout = MixingLayout.of(env)
    target_only = layout.field_mixture(1.0).astype(np.float32)
    observation, _ = env.reset(seed=0)
    assert np.all(observation[-layout.num_domains:] == 0)
    drawn = np.zeros(layout.num_domains)
    for _ in range(layout.num_steps):
        observation, reward, terminated, _, info = env.step(target_only)
        drawn += info["tokens_per_domain"]
    unique = env.unwrapped.run.sampler.unique_tokens
    np.testing.assert_allclose(info["epochs"], drawn / unique)
    np.testing.assert_allclose(observation[-layout.num_domains:], drawn / unique, rtol=1e-6)
    assert np.all(info["epochs"][layout.target_mask] > 1)  # finite target data: target-only repeats it
    assert np.all(info["epochs"][~layout.target_mask] == 0)
    improvements = np.array([env.unwrapped._history[-1][1].improvements[b.name] for b in layout.benchmarks])
    source, target = field_scores(improvements, layout.aggregate_members)
    assert (info["source_score"], info["target_score"]) == (source, target)
    assert not layout.aggregate_members[[b.kind != "task" for b in layout.benchmarks]].any()


def test_checkers_pass_and_seeded_episodes_repeat(cache_dir):
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = gym.make("DataMixing-v1", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA, torch_threads=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check(env.unwrapped, skip_render_check=True)  # two seeded runs must agree, info included
        sb3_check(env.unwrapped, warn=True)
    env.close()
    ours = [w for w in caught if "gymnasium" in w.filename or "stable_baselines3" in w.filename]
    assert not ours, [str(w.message) for w in ours]


def test_prepare_env_prepares_the_space_of_the_env_it_names(env, cache_dir):
    from mixing_gym.envs import prepare_env

    kwargs = {"preset": MICRO, "cache_dir": cache_dir, "data_config": TINY_DATA}
    data, base = prepare_env("mixing_gym:DataMixing-v1", kwargs, progress=False)
    assert data.space.name == "math-v1" and data.path == env.unwrapped.run.data.path
    assert base == env.unwrapped.run.base_path
    assert prepare_env("DataMixing-v0", kwargs, progress=False)[0].space.name == "math"
    with pytest.raises(ValueError, match="nothing to prepare"):
        prepare_env("DataMixingSurrogate-v0", kwargs)


def test_v1_scores_less_of_each_domain_and_each_task(env):
    """math-v1's own scoring budget (eval_chars, task_items) caps the data config's."""
    space = env.unwrapped.space
    assert (space.eval_chars, space.task_items) == (500, 32)
    tasks = env.unwrapped.run.evaluator.task_dict
    for spec in MixingLayout.of(env).benchmarks:
        rows = tasks[spec.name].dataset["test"]
        if spec.kind == "lm":
            chars = [len(row["text"]) for row in rows]  # passages are cut until eval_chars are reached
            assert sum(chars[:-1]) < space.eval_chars <= sum(chars) < TINY_DATA.eval_chars
        elif spec.kind == "task":
            assert 0 < len(rows) <= min(space.task_items, TINY_DATA.mc_items)


def test_the_cards_task_aware_mixture_feeds_every_task_its_own_domains(env):
    """The card's task-aware mixtures name real math-v1 domains: a renamed domain or task fails here, not in
    an hour-long card run."""
    assert_task_aware_mixture_feeds_every_task(MixingLayout.of(env))


def test_normalized_scores_come_from_the_cards_episodes():
    """0 is the uniform mixture and 100 the search's best, and the recorded references equal the card's rows."""
    from pathlib import Path

    import pandas as pd

    from mixing_gym import get_normalized_score
    from mixing_gym.normalized_scores import reference_scores

    card = pd.read_csv(Path(__file__).resolve().parent.parent / "docs" / "results" / "card_v1_small.csv")
    small = card[card["preset"] == "small"]
    reference = reference_scores("DataMixing-v1")
    assert reference.uniform == pytest.approx(small[small["name"] == "uniform"]["balanced"].mean(), abs=1e-12)
    assert reference.best == pytest.approx(small[small["name"] == "regmix on the search's runs"]["balanced"].mean(),
                                           abs=1e-12)
    assert get_normalized_score("DataMixing-v1", reference.uniform) == pytest.approx(0.0)
    np.testing.assert_allclose(get_normalized_score("mixing_gym:DataMixing-v1", [reference.best, 0.0]),
                               [100.0, -100 * reference.uniform / (reference.best - reference.uniform)])
    with pytest.raises(KeyError, match="No reference scores for DataMixing-v0 on preset 'small'.*DataMixing-v1"):
        get_normalized_score("DataMixing-v0", 0.25)
    with pytest.raises(KeyError, match="No reference scores for DataMixing-v1 on preset 'tiny', the 'math' field"):
        get_normalized_score("DataMixing-v1", 0.25, preset="tiny")

    headline = pd.read_csv(Path(__file__).resolve().parent.parent / "docs" / "results" / "headline_v1_small.csv")
    code = headline[headline["setting"] == "d_code_field"].groupby("agent")["balanced"].mean()
    reference = reference_scores("DataMixing-v1", target_field="code")
    assert (reference.uniform, reference.best) == pytest.approx((code["uniform"], code["search_64"]), abs=1e-12)
    assert code["search_64"] > code["regmix_64"]  # the search's best policy: its best trial, above RegMix on it
    assert get_normalized_score("DataMixing-v1", reference.best, target_field="code") == pytest.approx(100.0)
