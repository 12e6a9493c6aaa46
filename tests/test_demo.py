"""The main job and a first hour without surprises: the demo's library function on a small env, where its learned
agents may play, one source for the time estimates, and no stray SB3 log folders."""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

import pytest
from conftest import MICRO, TINY_DATA

from agents.demo import learned_agents_problem, run_demo
from agents.findings import finding
from mixing_gym.models import PRESETS
from mixing_gym.prepare import DataConfig
from mixing_gym.timings import BASE_PRETRAINING, DEMO_COST, about, base_pretraining_seconds, minutes_seconds


@pytest.mark.parametrize("kwargs, field", [
    ({}, "math"),
    ({"preset": "small", "space": None, "cache_dir": "/elsewhere", "data_config": DataConfig(), "benchmarks": "bpb",
      "reward": "target", "torch_threads": 2}, "math"),  # where and how fast it runs, and the reward, do not matter
    ({"space": "math-v1", "num_steps": 8}, "math"),  # the defaults, spelt out
    ({"target_field": "code"}, "code"),
    ({"space": "code-v1"}, "code"),
])
def test_the_learned_agents_play_where_their_reference_data_was_recorded(kwargs, field):
    assert learned_agents_problem("DataMixing-v1", kwargs) == (field, None)
    assert learned_agents_problem("mixing_gym:DataMixing-v1", kwargs) == (field, None)


@pytest.mark.parametrize("env_id, kwargs, named", [
    ("DataMixing-v1", {"preset": "micro"}, "preset 'micro', not 'small'"),
    ("DataMixing-v1", {"preset": dataclasses.replace(PRESETS["small"], base_tokens=10)},
     "preset: base_tokens 10, not 2000000"),
    ("DataMixing-v1", {"num_steps": 4}, "num_steps 4, not 8"),
    ("DataMixing-v1", {"space": "math"}, "space 'math', not 'math-v1'"),
    ("DataMixing-v1", {"data_config": TINY_DATA}, "vocab_size 512, not 4096"),
    ("DataMixing-v1", {"benchmarks": "all"}, "benchmarks 'all', not 'bpb'"),
    ("DataMixing-v0", {}, "This demo runs DataMixing-v0"),
])
def test_elsewhere_the_demo_says_why_the_learned_agents_sit_out(env_id, kwargs, named):
    field, why = learned_agents_problem(env_id, kwargs)
    assert field is None and named in why
    assert "play only where their reference surrogate and trajectories were recorded" in why
    assert "the baselines play alone" in why


def test_the_demo_on_micro_plays_the_baselines_alone_and_says_what_it_found(cache_dir, tmp_path, capsys):
    env_kwargs = {"preset": MICRO, "cache_dir": cache_dir, "data_config": TINY_DATA, "num_steps": 2}
    output = tmp_path / "demo"
    result = run_demo("DataMixing-v1", env_kwargs, seeds=2, output=output, workers=1,
                      baselines=("uniform", "fixed_ratio@0.25"))
    assert result.learned == [] and result.baselines == ["uniform", "fixed_ratio-0.25"]
    assert "(planner)" in result.left_out and "preset 'micro', not 'small'" in result.left_out
    assert "mixing-gym demo: This demo's env has" in capsys.readouterr().err  # said before anything plays
    summary = result.comparison.summary
    assert list(summary["agent"]) == ["uniform", "fixed_ratio-0.25"] and (summary["episodes"] == 2).all()
    assert not summary["balanced_ci95"].isna().any()  # two seeds: 95% intervals
    assert result.finding == finding(summary) and result.finding.startswith("Finding: ")
    assert re.search(r"95% confidence intervals \(±\S+ and ±\S+ over 2 seeds\)", result.finding)
    for name in ("results.md", "results.csv", "episodes.csv", "mixtures.png", "scores.png", "frontier.png"):
        assert (output / name).is_file(), name
    assert result.seconds["learn"] == 0 and result.comparison.new_episodes == 4

    again = run_demo("DataMixing-v1", env_kwargs, seeds=2, output=output, workers=1,
                     baselines=("uniform", "fixed_ratio@0.25"), progress=False)
    assert again.comparison.new_episodes == 0 and again.finding == result.finding  # a rerun reuses the episodes


def test_every_time_estimate_comes_from_the_measured_runs():
    small, micro = BASE_PRETRAINING["small"], BASE_PRETRAINING["micro"]
    for measured in (small, micro):  # base.json's tokens: the preset's base_tokens, less a part of a batch
        preset = PRESETS[measured.preset]
        assert 0 <= preset.base_tokens - measured.tokens < preset.seq_len * preset.batch_size
    assert base_pretraining_seconds("small") == small.seconds
    assert base_pretraining_seconds("small", small.parameters, 2 * small.tokens) == pytest.approx(2 * small.seconds)
    # an unmeasured model (another vocabulary, another preset) at the small run's FLOP/s
    assert base_pretraining_seconds("small", small.parameters // 2, small.tokens) == pytest.approx(small.seconds / 2)
    assert base_pretraining_seconds("paper-50m", 52_196_480, 200_000_000) > 100 * small.seconds
    with pytest.raises(ValueError, match="No measured pretraining time of preset 'paper-50m'"):
        base_pretraining_seconds("paper-50m")
    assert [about(s) for s in (10, 70, 266, 3 * 3600)] == ["under a minute", "about a minute", "about 4 minutes",
                                                        "about 3 hours"]
    assert (minutes_seconds(266), minutes_seconds(10.7)) == ("4 min 26 s", "11 s")

    from agents import cli

    parser, commands = cli.build_parser()
    quoted = {"prepare": [small.seconds], "demo": [DEMO_COST.total, DEMO_COST.pretraining, DEMO_COST.play]}
    for command, figures in quoted.items():
        text = " ".join(commands.choices[command].format_help().split())
        assert all(minutes_seconds(seconds) in text for seconds in figures), command
        assert not re.search(r"about \d+ minutes for small", text)  # no figure of its own


def test_the_time_estimates_and_the_readme_quote_the_committed_measurements():
    import pandas as pd

    root = Path(__file__).resolve().parent.parent
    rows = pd.read_csv(root / "docs" / "results" / "timings.csv")
    planner = rows[rows["run"] == "planner_cold"].set_index("measurement")["seconds"]
    for field in ("total", "prepare", "pretraining", "learn", "play"):
        assert getattr(DEMO_COST, field) == planner[f"demo_{field}"], field
    assert DEMO_COST.episodes == rows.loc[rows["run"] == "planner_cold", "episodes"].iloc[0]
    slower = rows.loc[rows["measurement"] == "demo_pretraining", "seconds"].max()
    assert BASE_PRETRAINING["small"].seconds == slower  # the slower of the two cold pretrainings
    micro = rows.loc[rows["measurement"] == "base_pretraining_micro", "seconds"].max()
    assert BASE_PRETRAINING["micro"].seconds == micro
    readme = (root / "README.md").read_text()
    for seconds in (slower, micro, DEMO_COST.total, DEMO_COST.prepare, DEMO_COST.play):
        assert minutes_seconds(seconds) in readme, seconds


def test_sb3_training_leaves_no_log_folder_in_the_temporary_directory(tmp_path, monkeypatch):
    from stable_baselines3 import PPO

    from agents.ppo import SURROGATE_ENV_ID, train_ppo
    from agents.sb3_vector import make_sb3_vector_env

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # where SB3's default logger makes SB3-<timestamp>/
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    model = train_ppo(total_timesteps=256, n_envs=2, log_dir=tmp_path / "ppo", verbose=0, env_id=SURROGATE_ENV_ID)
    assert model.num_timesteps == 256 and (tmp_path / "ppo" / "progress.csv").is_file()
    assert list(temporary.glob("SB3-*")) == []

    # the check sees the folder an SB3 model makes when it is given no logger
    PPO("MlpPolicy", make_sb3_vector_env("DataMixingSurrogate-v1", num_envs=2, seed=0), n_steps=8, batch_size=16,
        device="cpu").learn(16)
    assert len(list(temporary.glob("SB3-*"))) == 1
