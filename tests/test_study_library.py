"""The library pieces the research studies (``experiments/``) stand on: the task-aware mixture from each task
benchmark's ``draws_on``, the named offline configs, the baselines scale of normalised scores and the CSV upsert."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import assert_task_aware_mixture_feeds_every_task

from agents.registry import make_agent
from agents.task_aware import TaskAwareMixture
from mixing_gym.benchmark_data import TASK_BENCHMARKS, task_benchmark_name
from mixing_gym.domains import get_domain_space
from mixing_gym.layout import BenchmarkSpec, MixingLayout
from mixing_gym.normalized_scores import normalize_to_baselines
from mixing_gym.reference import REFERENCE_CODE_TRAJECTORIES, REFERENCE_TRAJECTORIES
from mixing_gym.storage import upsert_csv
from mixing_gym.trajectories import load_trajectories


@pytest.mark.parametrize("space", ["math-v1", "code-v1"])
def test_every_task_of_a_built_in_space_draws_on_some_of_its_domains(space):
    domains = get_domain_space(space)
    tasks = [name for name in domains.benchmarks if name in TASK_BENCHMARKS]
    assert tasks
    for task in tasks:
        assert any(name.startswith(TASK_BENCHMARKS[task].draws_on) for name in domains.names), task
    assert task_benchmark_name(f"mg_task_{tasks[0]}") == tasks[0] and task_benchmark_name("mg_bpb_news_0") is None


@pytest.mark.parametrize("trajectories", [REFERENCE_TRAJECTORIES, REFERENCE_CODE_TRAJECTORIES])
def test_the_task_aware_agent_plays_the_task_aware_mixture_of_the_committed_layouts(trajectories):
    # In weights mode an action is the mixture itself (logits cannot put a domain at 0).
    layout = dataclasses.replace(load_trajectories(trajectories).layout, action_mode="weights")
    assert_task_aware_mixture_feeds_every_task(layout)
    agent = make_agent("task_aware@0.4")
    assert isinstance(agent, TaskAwareMixture)
    agent.reset(layout)
    weights = agent.mixture(np.zeros(len(layout.observation_names)), {})
    assert weights[layout.target_mask].sum() == pytest.approx(0.4)
    np.testing.assert_allclose(layout.action_to_weights(agent.act(None, {})), weights / weights.sum(), atol=1e-6)


def test_the_task_aware_agent_refuses_a_layout_without_task_benchmarks():
    names, fields = ("news_0", "math_basic_arithmetic"), ("source", "target")
    benchmarks = tuple(BenchmarkSpec(f"mg_bpb_{name}", field, "lm", name) for name, field in zip(names, fields))
    layout = MixingLayout(names, fields, benchmarks, {spec.name: 1.0 for spec in benchmarks}, num_steps=2)
    with pytest.raises(ValueError, match="draws_on"):
        TaskAwareMixture().reset(layout)
    with pytest.raises(ValueError, match="target_share"):
        TaskAwareMixture(1.5)


def test_named_offline_configs_are_the_default_and_the_tuned_knobs():
    from agents.offline import OfflineConfig, named_offline_config

    assert named_offline_config("default") == OfflineConfig()
    tuned = named_offline_config("tuned")
    assert (tuned.standardise_rewards, tuned.reward_scale, tuned.action_encoding, tuned.method, tuned.observe_mixture) \
        == (True, 1.0, "centred", "awr", True)
    with pytest.raises(KeyError, match="default, tuned"):
        named_offline_config("best")


def test_the_baselines_scale_puts_uniform_at_0_and_the_best_baseline_at_100():
    scores = normalize_to_baselines(np.array([0.06, 0.08, 0.07]), uniform=0.06, best_baseline=0.08)
    np.testing.assert_allclose(scores, [0.0, 100.0, 50.0])
    assert normalize_to_baselines(0.07, 0.06, 0.08) == pytest.approx(50.0)
    assert np.isnan(normalize_to_baselines(0.07, uniform=0.06, best_baseline=0.06))  # uniform is the best


def test_upsert_csv_replaces_the_rows_of_a_key_and_keeps_the_others_as_written(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("setting,agent,seed,balanced\na,uniform,1,0.0700\na,uniform,2,0.0710\nb,uniform,1,0.0500\n")
    rows = pd.DataFrame({"setting": ["a", "a"], "agent": ["uniform", "odm"], "seed": [2, 1],
                         "balanced": [0.08, 1 / 3], "target_share": [0.5, 0.25]})
    upsert_csv(path, rows, ["setting", "agent", "seed"], float_format="%.6f")
    assert path.read_text() == ("setting,agent,seed,balanced,target_share\n"
                                "a,uniform,1,0.0700,\n"  # kept as written: no number read and written back
                                "b,uniform,1,0.0500,\n"
                                "a,uniform,2,0.080000,0.500000\n"
                                "a,odm,1,0.333333,0.250000\n")
    upsert_csv(tmp_path / "new.csv", rows.iloc[:1], ["agent"])
    assert (tmp_path / "new.csv").read_text() == "setting,agent,seed,balanced,target_share\na,uniform,2,0.08,0.5\n"
