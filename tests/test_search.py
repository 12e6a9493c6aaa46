"""The search baseline (:class:`agents.search.MixtureSearch`) on the micro env: real episodes, small budgets."""

from __future__ import annotations

import shutil

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import MICRO, TINY_DATA

import agents.search
import mixing_gym  # noqa: F401  (registers the env)
from agents import AGENTS, play_episode
from agents.registry import NEEDS_TRAINING
from agents.search import MixtureSearch
from mixing_gym.layout import BenchmarkSpec, MixingLayout


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread, as in tests/test_agents.py: two threads spin-waiting on two shared cores make a micro
    step many times slower. The process's setting is restored for the other modules."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env(prepared, cache_dir):
    environment = gym.make("DataMixing-v0", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA,
                           benchmarks="bpb", torch_threads=1)
    yield environment
    environment.close()


@pytest.fixture(scope="module")
def static(env, tmp_path_factory):
    table = tmp_path_factory.mktemp("search") / "static.csv"
    return MixtureSearch().learn(env, budget=4, seed=0, table_path=table, progress=False), table


@pytest.fixture(scope="module")
def two_phase(env, tmp_path_factory):
    table = tmp_path_factory.mktemp("search") / "two_phase.csv"
    return MixtureSearch("two_phase").learn(env, budget=3, seed=0, table_path=table, progress=False), table


def _weights(table: pd.DataFrame, phase: int, names: tuple[str, ...]) -> np.ndarray:
    return table[[f"weight{phase}/{name}" for name in names]].to_numpy()


def _check_learned(agent: MixtureSearch, table_path, layout: MixingLayout, budget: int, phases: int) -> None:
    table = pd.read_csv(table_path)
    assert len(table) == budget and table["trial"].tolist() == list(range(budget))
    assert (table["episode_seed"] == 0).all()  # common random numbers: one env seed for every trial
    for phase in range(1, phases + 1):
        assert np.allclose(_weights(table, phase, layout.domain_names)[0], 1.0 / layout.num_domains)  # uniform first
        assert np.allclose(_weights(table, phase, layout.domain_names).sum(axis=1), 1.0)
    assert agent.best_schedule.shape == (layout.num_steps, layout.num_domains)
    assert np.allclose(agent.best_schedule.sum(axis=1), 1.0)
    assert agent.best_score == table["score"].max() and agent.best_score >= table["score"].iloc[0]
    pd.testing.assert_frame_equal(agent.table, table, check_dtype=False)


def _check_plays_best(agent: MixtureSearch, env: gym.Env) -> dict:
    """The agent plays its schedule, and on the search seed it scores exactly what its trial scored."""
    record = play_episode(agent, env, seed=0).record()
    assert np.allclose([step["mixture"] for step in record["steps"]], agent.best_schedule, atol=1e-5)
    assert record["balanced"] == pytest.approx(agent.best_score, abs=1e-9)
    return record


def test_static_search_writes_its_table_and_plays_the_best_mixture(env, static):
    agent, table = static
    layout = MixingLayout.of(env)
    _check_learned(agent, table, layout, budget=4, phases=1)
    assert np.allclose(agent.best_schedule, agent.best_schedule[0])  # one mixture for the whole episode
    _check_plays_best(agent, env)


def test_two_phase_search_switches_once(env, two_phase):
    agent, table = two_phase
    layout = MixingLayout.of(env)
    _check_learned(agent, table, layout, budget=3, phases=2)
    rows = pd.read_csv(table)
    assert rows["switch"].between(1, layout.num_steps - 1).all()
    best = rows.loc[rows["score"].idxmax()]
    switch = int(best["switch"])
    assert np.allclose(agent.best_schedule[:switch], _weights(rows.loc[[best.name]], 1, layout.domain_names))
    assert np.allclose(agent.best_schedule[switch:], _weights(rows.loc[[best.name]], 2, layout.domain_names))
    _check_plays_best(agent, env)


def test_rerun_reuses_the_table_and_plays_only_the_new_trials(env, static, monkeypatch, tmp_path):
    table = tmp_path / "static.csv"
    shutil.copy(static[1], table)  # the other tests read the four-trial table
    first = pd.read_csv(table)
    played = []

    def counting(*args, **kwargs):
        played.append(kwargs["seed"])
        return play_episode(*args, **kwargs)

    monkeypatch.setattr(agents.search, "play_episode", counting)
    again = MixtureSearch().learn(env, budget=6, seed=0, table_path=table, progress=False)
    rows = pd.read_csv(table)
    assert played == [0, 0] and len(rows) == 6 and rows["trial"].tolist() == list(range(6))
    pd.testing.assert_frame_equal(rows.iloc[:4], first)
    assert len(again.study.trials) == 6 and again.best_score == rows["score"].max()
    # A smaller budget reuses the first rows and plays nothing.
    fewer = MixtureSearch().learn(env, budget=2, seed=0, table_path=table, progress=False)
    assert played == [0, 0] and len(fewer.table) == 2 and fewer.best_score == first["score"].iloc[:2].max()


@pytest.mark.parametrize(("settings", "learn", "message"), [
    ({"schedule": "two_phase"}, {}, "columns"),
    ({}, {"seed": 1}, "seed"),
    ({}, {"episode_seed": 3}, "episode_seed"),
    ({"objective": "return"}, {}, "objective"),
    ({"sampler": "cmaes"}, {}, "sampler"),
])
def test_a_table_from_other_settings_is_a_clear_error(env, static, settings, learn, message):
    _agent, table = static
    with pytest.raises(ValueError, match=f"other settings.*{message}"):
        MixtureSearch(**settings).learn(env, budget=8, table_path=table, progress=False, **learn)


def test_cmaes_sampler_runs(env):
    layout = MixingLayout.of(env)
    agent = MixtureSearch(sampler="cmaes", objective="return").learn(env, budget=2, seed=0, progress=False)
    assert len(agent.table) == 2 and agent.best_schedule.shape == (layout.num_steps, layout.num_domains)
    record = play_episode(agent, env, seed=0).record()
    assert record["return"] == pytest.approx(agent.best_score, abs=1e-9)


def test_untrained_or_mismatched_agents_and_bad_options_are_errors(env, static):
    agent, _table = static
    assert AGENTS["search"] is MixtureSearch and "search" in NEEDS_TRAINING
    with pytest.raises(RuntimeError, match="learn"):
        MixtureSearch().reset(MixingLayout.of(env))
    names = ("a", "b")
    other = MixingLayout(names, ("source", "target"), tuple(BenchmarkSpec(f"mg_bpb_{n}", "source", "lm", n)
                                                            for n in names), {f"mg_bpb_{n}": 2.0 for n in names}, 4)
    with pytest.raises(ValueError, match="learn again"):
        agent.reset(other)
    for option in ({"schedule": "three_phase"}, {"sampler": "random"}, {"objective": "target"}):
        with pytest.raises(ValueError, match="Unknown"):
            MixtureSearch(**option)
