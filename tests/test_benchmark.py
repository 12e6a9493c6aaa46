"""``mixing-gym benchmark`` and what it stands on: the surrogate's same-step autoreset, SB3 on the vectorised
surrogate, resumable runs under one protocol, validation on the real env, the report."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from conftest import MICRO, TINY_DATA
from gymnasium.vector import AutoresetMode

import mixing_gym  # noqa: F401  (registers the envs)
from agents.benchmark import BenchmarkProtocol, load_policy, markdown, run_benchmark, validate, write_report
from agents.cli import main
from agents.sb3_vector import VectorEnvAdapter, make_sb3_vector_env
from mixing_gym import get_normalized_score

ENV_ID = "DataMixingSurrogate-v1"
PROTOCOL = BenchmarkProtocol(timesteps=256, num_envs=4)


def test_same_step_autoreset_resets_in_the_step_that_ends_an_episode():
    """Same-step steps as next-step does, but an ended episode restarts at once, its last step kept in infos."""
    same = gym.make_vec(ENV_ID, num_envs=3, autoreset_mode=AutoresetMode.SAME_STEP)
    nxt = gym.make_vec(ENV_ID, num_envs=3, autoreset_mode="NextStep")
    start, _ = same.reset(seed=0)
    nxt.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (9, *same.action_space.shape)).astype(np.float32)
    for step, action in enumerate(actions[:8]):
        observations, rewards, terminated, truncated, infos = same.step(action)
        want = nxt.step(action)
        np.testing.assert_array_equal(rewards, want[1])
        if step < 7:
            np.testing.assert_array_equal(observations, want[0])
            assert "final_obs" not in infos
    assert terminated.all() and not truncated.any()
    np.testing.assert_array_equal(infos["final_obs"], want[0])  # the last observation of the episode
    np.testing.assert_array_equal(observations, start)  # already the next episode's first
    np.testing.assert_array_equal(infos["final_info"]["objective"], want[4]["objective"])
    assert "objective" not in infos  # every env was reset: they report only their mixture
    with pytest.raises(ValueError, match="autoreset_mode must be one of"):
        gym.make_vec(ENV_ID, num_envs=2, autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match="SAME_STEP"):
        VectorEnvAdapter(nxt)


def test_sb3_adapter_hands_sb3_the_terminal_observation_and_learns():
    from stable_baselines3 import PPO

    env = make_sb3_vector_env(ENV_ID, num_envs=2, seed=3)
    first = env.reset()
    reference = gym.make(ENV_ID)
    np.testing.assert_array_equal(first[1], reference.reset(seed=4)[0])  # env i starts from seed + i
    action = np.zeros((2, *env.action_space.shape), dtype=np.float32)
    for _ in range(8):
        observations, rewards, dones, infos = env.step(action)
        last = reference.step(action[1])
    assert dones.all() and rewards.dtype == np.float32
    np.testing.assert_allclose(infos[1]["terminal_observation"], last[0], rtol=1e-6)
    assert infos[1]["TimeLimit.truncated"] is False and "source_score" not in infos[1]
    np.testing.assert_array_equal(observations, first)
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=16, seed=0, device="cpu")
    model.learn(32)
    assert model.num_timesteps == 32


def test_benchmark_runs_resume_are_deterministic_and_report(tmp_path):
    rows = run_benchmark(["a2c", "td3"], 2, tmp_path, PROTOCOL, validate_runs=0, progress=False)
    assert list(zip(rows["algorithm"], rows["seed"])) == [("a2c", 0), ("a2c", 1), ("td3", 0), ("td3", 1)]
    assert rows["real_balanced"].isna().all() and np.isfinite(rows["surrogate_normalised"]).all()
    assert (rows["timesteps"] == PROTOCOL.timesteps).all()
    run = tmp_path / "a2c-seed0" / "run.json"
    written = run.stat().st_mtime_ns
    again = run_benchmark(["a2c", "td3"], 2, tmp_path, PROTOCOL, validate_runs=0, progress=False)
    assert run.stat().st_mtime_ns == written  # resumed: nothing retrained
    pd.testing.assert_frame_equal(rows, again)
    # the same run in another folder trains to the same policy and score
    fresh = run_benchmark(["a2c"], 1, tmp_path / "fresh", PROTOCOL, validate_runs=0, progress=False)
    assert fresh["surrogate_balanced"][0] == rows["surrogate_balanced"][0]
    assert json.loads((tmp_path / "protocol.json").read_text())["timesteps"] == PROTOCOL.timesteps

    table = write_report(rows, tmp_path, tmp_path / "results" / "rows.csv")
    assert list(table["algorithm"]) == ["a2c", "td3"] and (table["surrogate_runs"] == 2).all()
    assert "| a2c | 2 |" in markdown(table) and (tmp_path / "profiles_surrogate.png").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "results" / "rows.csv")) == 4

    with pytest.raises(ValueError, match="resume it with the same options or give another --output"):
        run_benchmark(["a2c"], 1, tmp_path, BenchmarkProtocol(timesteps=512, num_envs=4), validate_runs=0)
    with pytest.raises(ValueError, match="Unknown algorithms.*'dqn'.*choose from"):
        run_benchmark(["ppo", "dqn"], 1, tmp_path, PROTOCOL)
    with pytest.raises(ValueError, match="timesteps and num_envs must be positive"):
        BenchmarkProtocol(timesteps=0)


@pytest.mark.slow
def test_validation_plays_each_policy_on_the_real_env(tmp_path, prepared, cache_dir):
    """The trained policies play real DataMixing-v1 episodes (micro here), each on env seed 1 + its run's."""
    run_benchmark(["ppo"], 1, tmp_path, PROTOCOL, validate_runs=0, progress=False)
    env_kwargs = {"preset": MICRO, "cache_dir": cache_dir, "data_config": TINY_DATA, "torch_threads": 1}
    scores = validate({("ppo", 0): tmp_path / "ppo-seed0"}, [0], PROTOCOL, tmp_path / "real", progress=False,
                      env_kwargs=env_kwargs)
    episode = json.loads((tmp_path / "real" / "episodes" / "ppo__seed1.json").read_text())["episode"]
    assert scores == {("ppo", 0): episode["balanced"]} and np.isfinite(scores["ppo", 0])
    env = gym.make("DataMixing-v1", **env_kwargs)
    start, _ = env.reset(seed=1)
    assert len(episode["steps"]) == env.unwrapped.num_steps
    env.close()
    first_action = load_policy("ppo", tmp_path / "ppo-seed0").act(start, {})  # the trained policy, deterministic
    np.testing.assert_allclose(episode["steps"][0]["action"], first_action, atol=1e-6)


@pytest.mark.slow
def test_the_code_field_benchmark_trains_scores_and_validates_on_code(tmp_path, cache_dir):
    """--target-field code: the code surrogate trains and scores, the code reference scores normalise, and the
    policies play DataMixing-v1(target_field="code") (micro here)."""
    code = BenchmarkProtocol(timesteps=256, num_envs=4, target_field="code")
    rows = run_benchmark(["a2c"], 1, tmp_path, code, validate_runs=0, progress=False)
    balanced = rows["surrogate_balanced"].to_numpy()
    np.testing.assert_allclose(rows["surrogate_normalised"], get_normalized_score("DataMixing-v1", balanced,
                                                                                   target_field="code"))
    surrogate = gym.make(ENV_ID, target_field="code")
    assert load_policy("a2c", tmp_path / "a2c-seed0").act(surrogate.reset(seed=0)[0], {}).shape == \
        surrogate.action_space.shape != gym.make(ENV_ID).action_space.shape  # code-v1's domains, not math-v1's
    env_kwargs = {"preset": MICRO, "cache_dir": cache_dir, "data_config": TINY_DATA, "torch_threads": 1}
    scores = validate({("a2c", 0): tmp_path / "a2c-seed0"}, [0], code, tmp_path / "real", progress=False,
                      env_kwargs=env_kwargs)
    episode = json.loads((tmp_path / "real" / "episodes" / "a2c__seed1.json").read_text())["episode"]
    assert scores == {("a2c", 0): episode["balanced"]} and np.isfinite(scores["a2c", 0])
    assert len(episode["steps"][0]["action"]) == surrogate.action_space.shape[0]
    with pytest.raises(ValueError, match="resume it with the same options"):
        run_benchmark(["a2c"], 1, tmp_path, PROTOCOL, validate_runs=0)  # a math protocol over a code benchmark


def test_a_protocol_names_the_fields_that_have_a_reference_surrogate(tmp_path):
    with pytest.raises(KeyError, match=r"No reference surrogate of the 'law' field.*\['code', 'math'\]"):
        BenchmarkProtocol(target_field="law")
    # a benchmark started before the protocol had a target field resumes as the math field's
    (tmp_path / "protocol.json").write_text(json.dumps({"timesteps": 256, "num_envs": 4, "preset": "small",
                                                        "surrogate_env_id": ENV_ID, "real_env_id": "DataMixing-v1"}))
    assert run_benchmark(["a2c"], 1, tmp_path, PROTOCOL, validate_runs=0, progress=False)["seed"].tolist() == [0]


def test_cli_benchmark_prints_the_table(tmp_path, capsys):
    assert main(["benchmark", "--algos", "a2c", "--seeds", "1", "--timesteps", "256", "--num-envs", "4",
                 "--validate", "0", "--workers", "1", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| a2c | 1 |" in out and "benchmark.csv" in out
    assert main(["benchmark", "--algos", "dqn", "--output", str(tmp_path)]) == 2
    assert "Unknown algorithms ['dqn']" in capsys.readouterr().err
