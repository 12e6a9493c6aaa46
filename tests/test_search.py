"""The search baseline (:class:`agents.search.MixtureSearch`) on the micro env: real episodes, small budgets."""

from __future__ import annotations

import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import MICRO, TINY_DATA

import mixing_gym  # noqa: F401  (registers the env)
from agents import play_episode
from agents.registry import Need, agent_spec
from agents.search import MixtureSearch
from mixing_gym.envs import target_field_space_of
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
    store = tmp_path_factory.mktemp("search") / "static"
    return MixtureSearch().learn(env, budget=4, seed=0, store=store, progress=False), store


@pytest.fixture(scope="module")
def two_phase(env, tmp_path_factory):
    store = tmp_path_factory.mktemp("search") / "two_phase"
    return MixtureSearch("two_phase").learn(env, budget=3, seed=0, store=store, progress=False), store


def _weights(table: pd.DataFrame, phase: int, names: tuple[str, ...]) -> np.ndarray:
    return table[[f"weight{phase}/{name}" for name in names]].to_numpy()


def _check_learned(agent: MixtureSearch, store, layout: MixingLayout, budget: int, phases: int) -> None:
    table = agent.table
    assert len(table) == budget and table["trial"].tolist() == list(range(budget))
    assert sorted(path.name for path in store.iterdir()) == sorted(f"trial{index}.json" for index in range(budget))
    assert (table["episode_seed"] == 0).all()  # common random numbers: one env seed for every trial
    for phase in range(1, phases + 1):
        assert np.allclose(_weights(table, phase, layout.domain_names)[0], 1.0 / layout.num_domains)  # uniform first
        assert np.allclose(_weights(table, phase, layout.domain_names).sum(axis=1), 1.0)
    assert agent.best_schedule.shape == (layout.num_steps, layout.num_domains)
    assert np.allclose(agent.best_schedule.sum(axis=1), 1.0)
    assert agent.best_score == table["score"].max() and agent.best_score >= table["score"].iloc[0]
    # What the studies read back: the table as a CSV gives the same agent without playing.
    table.to_csv(store.parent / f"{store.name}.csv", index=False)
    rebuilt = MixtureSearch.from_table(store.parent / f"{store.name}.csv", layout.domain_names)
    np.testing.assert_array_equal(rebuilt.best_schedule, agent.best_schedule)
    assert (rebuilt.schedule, rebuilt.best_score, rebuilt.num_steps) == (agent.schedule, agent.best_score,
                                                                         layout.num_steps)
    pd.testing.assert_frame_equal(rebuilt.table, table, check_dtype=False)


def _check_plays_best(agent: MixtureSearch, env: gym.Env) -> dict:
    """The agent plays its schedule, and on the search seed it scores exactly what its trial scored."""
    record = play_episode(agent, env, seed=0).record()
    assert np.allclose([step["mixture"] for step in record["steps"]], agent.best_schedule, atol=1e-5)
    assert record["balanced"] == pytest.approx(agent.best_score, abs=1e-9)
    return record


def test_static_search_stores_its_trials_and_plays_the_best_mixture(env, static):
    agent, store = static
    layout = MixingLayout.of(env)
    _check_learned(agent, store, layout, budget=4, phases=1)
    assert np.allclose(agent.best_schedule, agent.best_schedule[0])  # one mixture for the whole episode
    _check_plays_best(agent, env)


def test_two_phase_search_switches_once(env, two_phase):
    agent, store = two_phase
    layout = MixingLayout.of(env)
    _check_learned(agent, store, layout, budget=3, phases=2)
    rows = agent.table
    assert rows["switch"].between(1, layout.num_steps - 1).all()
    best = rows.loc[rows["score"].idxmax()]
    switch = int(best["switch"])
    assert np.allclose(agent.best_schedule[:switch], _weights(rows.loc[[best.name]], 1, layout.domain_names))
    assert np.allclose(agent.best_schedule[switch:], _weights(rows.loc[[best.name]], 2, layout.domain_names))
    _check_plays_best(agent, env)


def test_rerun_reuses_the_stored_trials_and_plays_only_the_new_ones(env, static, tmp_path):
    store = tmp_path / "static"
    shutil.copytree(static[1], store)  # the other tests read the four-trial store
    first = static[0].table
    stamps = {path: path.stat().st_mtime_ns for path in store.iterdir()}
    again = MixtureSearch().learn(env, budget=6, seed=0, store=store, progress=False)
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps  # the stored trials were not played again
    assert sorted(path.name for path in store.iterdir()) == sorted(f"trial{index}.json" for index in range(6))
    assert again.table["trial"].tolist() == list(range(6))
    pd.testing.assert_frame_equal(again.table.iloc[:4], first)
    assert len(again.study.trials) == 6 and again.best_score == again.table["score"].max()
    # A smaller budget reuses the first trials and plays nothing.
    fewer = MixtureSearch().learn(env, budget=2, seed=0, store=store, progress=False)
    assert len(list(store.iterdir())) == 6 and len(fewer.table) == 2
    assert fewer.best_score == first["score"].iloc[:2].max()


@pytest.mark.parametrize(("settings", "learn", "message"), [
    ({"schedule": "two_phase"}, {}, "schedule: 'static' recorded, 'two_phase' now"),
    ({}, {"seed": 1}, "seed: 0 recorded, 1 now"),
    ({}, {"episode_seed": 3}, "episode_seed: 0 recorded, 3 now"),
    ({"objective": "return"}, {}, "objective"),
    ({"sampler": "cmaes"}, {}, "sampler"),
    ({"batch": 2}, {}, "batch"),
])
def test_a_store_of_other_settings_is_a_clear_error(env, static, settings, learn, message):
    _agent, store = static
    with pytest.raises(ValueError, match=f"{store} was recorded under other settings.*{message}"):
        MixtureSearch(**settings).learn(env, budget=8, store=store, progress=False, **learn)


def test_a_table_of_another_domain_space_is_a_clear_error(static):
    agent, _store = static
    with pytest.raises(ValueError, match="tied to its domain space"):
        MixtureSearch.from_table(agent.table, ["a", "b"])


def test_cmaes_sampler_runs(env):
    layout = MixingLayout.of(env)
    agent = MixtureSearch(sampler="cmaes", objective="return").learn(env, budget=2, seed=0, progress=False)
    assert len(agent.table) == 2 and agent.best_schedule.shape == (layout.num_steps, layout.num_domains)
    record = play_episode(agent, env, seed=0).record()
    assert record["return"] == pytest.approx(agent.best_score, abs=1e-9)


def test_untrained_or_mismatched_agents_and_bad_options_are_errors(env, static):
    agent, _table = static
    assert agent_spec("search").needs is Need.RUNS
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


def test_the_committed_search_table_gives_its_best_schedule_without_playing():
    """``docs/results/search_v1_small.csv``, which the studies read: the v1 math space's search of 64 trials."""
    path = Path(__file__).resolve().parent.parent / "docs" / "results" / "search_v1_small.csv"
    names = target_field_space_of("DataMixing-v1", "math").names
    agent = MixtureSearch.from_table(path, names)
    table = pd.read_csv(path)
    best = table.loc[table["score"].idxmax()]
    assert agent.best_score == best["score"] and len(agent.table) == 64
    assert agent.best_schedule.shape == (8, len(names)) and np.allclose(agent.best_schedule.sum(axis=1), 1.0)
    np.testing.assert_array_equal(agent.best_schedule[-1], best[[f"weight1/{name}" for name in names]].astype(float))
