"""``mixing-gym benchmark`` and what it stands on: the surrogate's same-step autoreset, SB3 on the vectorised
surrogate, resumable runs under one protocol, any algorithm as a factory (built-in, a module or a file, an object),
the example algorithm, validation on the real env, :func:`agents.evaluation.evaluate_policy`, the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from conftest import MICRO, TINY_DATA
from gymnasium.vector import AutoresetMode

import mixing_gym  # noqa: F401  (registers the envs)
from agents.algorithms import algorithms_of, sb3_env
from agents.backends import Backend
from agents.base import Agent, FunctionAgent, SB3Agent, play_episode
from agents.benchmark import (
    COLUMNS,
    PROTOCOL_VERSIONS,
    BenchmarkProtocol,
    make_training_env,
    markdown,
    run_benchmark,
    validate,
    write_report,
)
from agents.cli import main
from agents.evaluation import PolicyError, as_agent, evaluate_policies, evaluate_policy
from agents.policy_files import load_policy
from agents.sb3_vector import VectorEnvAdapter, make_sb3_vector_env
from mixing_gym import MixingLayout, get_normalized_score

ENV_ID = "DataMixingSurrogate-v1"
PROTOCOL = BenchmarkProtocol(timesteps=256, num_envs=4)
PROTOCOL_V1 = BenchmarkProtocol(timesteps=256, num_envs=4, surrogate_env_id="DataMixingSurrogate-v1")
REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "reinforce.py"
#: The columns of the committed docs/results/benchmark_v1_small.csv: the rows keep them first, in this order.
COMMITTED_COLUMNS = ["algorithm", "seed", "timesteps", "surrogate_balanced", "surrogate_target_share",
                     "train_seconds", "real_balanced", "surrogate_normalised", "real_normalised", "gap"]


# Factories of the contract factory(env, seed, budget) -> policy, as a user writes them.
def make_zeros(env, seed, budget):
    """Steps nothing; every domain the same logit: the uniform mixture."""
    return lambda observation: np.zeros(env.single_action_space.shape, dtype=np.float32)


def make_target_heavy(env, seed, budget):
    """Spends a quarter of the budget stepping the env, then returns a callable of (observation, info)."""
    env.reset(seed=seed)
    for _ in range(budget // 4 // env.num_envs):
        env.step(np.zeros((env.num_envs, *env.single_action_space.shape), dtype=np.float32))
    logits = np.where(env.unwrapped.layout.target_mask, 1.0, -1.0).astype(np.float32)

    def policy(observation, info):
        return logits

    return policy


def make_nothing(env, seed, budget):
    return "not a policy"


def make_wrong_shape(env, seed, budget):
    return lambda observation: np.zeros(3, dtype=np.float32)


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
    from stable_baselines3.common.logger import Logger

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
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default logger leaves a /tmp/SB3-* folder
    model.learn(32)
    assert model.num_timesteps == 32


def test_benchmark_runs_resume_are_deterministic_and_report(tmp_path):
    rows = run_benchmark(PROTOCOL, ["a2c", "td3"], 2, tmp_path, validate_runs=0, progress=False)
    assert list(zip(rows["algorithm"], rows["seed"])) == [("a2c", 0), ("a2c", 1), ("td3", 0), ("td3", 1)]
    assert list(rows.columns) == list(COLUMNS) and list(COLUMNS[:10]) == COMMITTED_COLUMNS  # new columns at the end
    assert (rows["spec"] == rows["algorithm"]).all() and (rows["protocol_version"] == 6).all() and PROTOCOL.version == 6
    assert (rows["env_steps"] >= PROTOCOL.timesteps).all()  # SB3 ends at a whole rollout
    assert rows["real_balanced"].isna().all() and np.isfinite(rows["surrogate_normalised"]).all()
    assert (rows["timesteps"] == PROTOCOL.timesteps).all()
    run = tmp_path / "a2c-seed0" / "run.json"
    written = run.stat().st_mtime_ns
    again = run_benchmark(PROTOCOL, ["a2c", "td3"], 2, tmp_path, validate_runs=0, progress=False)
    assert run.stat().st_mtime_ns == written  # resumed: nothing retrained
    pd.testing.assert_frame_equal(rows, again)
    # the same run in another folder trains to the same policy and score
    fresh = run_benchmark(PROTOCOL, ["a2c"], 1, tmp_path / "fresh", validate_runs=0, progress=False)
    assert fresh["surrogate_balanced"][0] == rows["surrogate_balanced"][0]
    recorded = json.loads((tmp_path / "protocol.json").read_text())
    assert recorded["timesteps"] == PROTOCOL.timesteps
    assert recorded["version"] == PROTOCOL.version == PROTOCOL_VERSIONS["DataMixingSurrogate-v6"]

    table = write_report(rows, tmp_path, tmp_path / "results" / "rows.csv")
    assert list(table["algorithm"]) == ["a2c", "td3"] and (table["surrogate_runs"] == 2).all()
    assert "| a2c | 2 |" in markdown(table) and (tmp_path / "profiles_surrogate.png").stat().st_size > 0
    written_rows = pd.read_csv(tmp_path / "results" / "rows.csv")
    assert len(written_rows) == 4 and list(written_rows.columns) == list(COLUMNS)

    with pytest.raises(ValueError, match="resume it with the same options or give another --output"):
        run_benchmark(BenchmarkProtocol(timesteps=512, num_envs=4), ["a2c"], 1, tmp_path, validate_runs=0)
    with pytest.raises(ValueError, match="Unknown algorithms.*'dqn'.*choose from"):
        run_benchmark(PROTOCOL, ["ppo", "dqn"], 1, tmp_path)
    with pytest.raises(ValueError, match="timesteps and num_envs must be positive"):
        BenchmarkProtocol(timesteps=0)


@pytest.mark.slow
def test_validation_plays_each_policy_on_the_real_env(tmp_path, prepared, cache_dir):
    """The trained policies play real DataMixing-v1 episodes (micro here), each on env seed 1 + its run's."""
    run_benchmark(PROTOCOL, ["ppo"], 1, tmp_path, validate_runs=0, progress=False)
    env_kwargs = {"preset": MICRO, "cache_dir": cache_dir, "data_config": TINY_DATA, "torch_threads": 1}
    scores = validate({("ppo", 0): tmp_path / "ppo-seed0"}, [0], PROTOCOL, tmp_path / "real", progress=False,
                      env_kwargs=env_kwargs)
    episode = json.loads((tmp_path / "real" / "episodes" / "ppo__seed1.json").read_text())["episode"]
    assert scores == {("ppo", 0): episode["balanced"]} and np.isfinite(scores["ppo", 0])
    env = gym.make("DataMixing-v1", **env_kwargs)
    start, _ = env.reset(seed=1)
    assert len(episode["steps"]) == env.unwrapped.num_steps
    env.close()
    first_action = load_policy(tmp_path / "ppo-seed0").act(start, {})  # the trained policy, deterministic
    np.testing.assert_allclose(episode["steps"][0]["action"], first_action, atol=1e-6)


@pytest.mark.slow
def test_the_code_field_benchmark_trains_scores_and_validates_on_code(tmp_path, cache_dir):
    """--target-field code: the code surrogate trains and scores, the code reference scores normalise, and the
    policies play DataMixing-v1(target_field="code") (micro here)."""
    code = BenchmarkProtocol(timesteps=256, num_envs=4, target_field="code")
    rows = run_benchmark(code, ["a2c"], 1, tmp_path, validate_runs=0, progress=False)
    balanced = rows["surrogate_balanced"].to_numpy()
    np.testing.assert_allclose(rows["surrogate_normalised"], get_normalized_score("DataMixing-v1", balanced,
                                                                                   target_field="code"))
    surrogate = gym.make(ENV_ID, target_field="code")
    assert load_policy(tmp_path / "a2c-seed0").act(surrogate.reset(seed=0)[0], {}).shape == \
        surrogate.action_space.shape != gym.make(ENV_ID).action_space.shape  # code-v1's domains, not math-v1's
    env_kwargs = {"preset": MICRO, "cache_dir": cache_dir, "data_config": TINY_DATA, "torch_threads": 1}
    scores = validate({("a2c", 0): tmp_path / "a2c-seed0"}, [0], code, tmp_path / "real", progress=False,
                      env_kwargs=env_kwargs)
    episode = json.loads((tmp_path / "real" / "episodes" / "a2c__seed1.json").read_text())["episode"]
    assert scores == {("a2c", 0): episode["balanced"]} and np.isfinite(scores["a2c", 0])
    assert len(episode["steps"][0]["action"]) == surrogate.action_space.shape[0]
    with pytest.raises(ValueError, match="resume it with the same options"):
        run_benchmark(PROTOCOL, ["a2c"], 1, tmp_path, validate_runs=0)  # a math protocol over a code benchmark


def test_a_protocol_names_the_fields_that_have_a_reference_surrogate(tmp_path):
    with pytest.raises(KeyError, match=r"No reference surrogate of the 'law' field.*\['code', 'math'\]"):
        BenchmarkProtocol(target_field="law")
    # a benchmark started before the protocol had a target field resumes as the math field's
    (tmp_path / "protocol.json").write_text(json.dumps({"timesteps": 256, "num_envs": 4, "preset": "small",
                                                        "surrogate_env_id": ENV_ID, "real_env_id": "DataMixing-v1"}))
    assert run_benchmark(PROTOCOL_V1, ["a2c"], 1, tmp_path, validate_runs=0, progress=False)["seed"].tolist() == [0]


def test_cli_benchmark_prints_the_table(tmp_path, capsys):
    assert main(["benchmark", "--algos", "a2c", "--seeds", "1", "--timesteps", "256", "--num-envs", "4",
                 "--validate", "0", "--workers", "1", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| a2c | 1 |" in out and "benchmark.csv" in out
    assert main(["benchmark", "--algos", "dqn", "--output", str(tmp_path)]) == 2
    assert "Unknown algorithms ['dqn']" in capsys.readouterr().err


def test_cli_takes_factories_by_module_and_by_file(tmp_path, capsys, monkeypatch):
    """--algo is repeatable and takes comma lists mixing built-ins, module:factory and path.py:factory specs; the
    rows record each spec. The example's module form imports from the working folder, as `python -m` would."""
    monkeypatch.chdir(REPO)
    assert main(["benchmark", "--algo", "a2c,zeros=tests/test_benchmark.py:make_zeros",
                 "--algo", "examples.reinforce:make_agent", "--seeds", "1", "--timesteps", "512", "--num-envs", "4",
                 "--validate", "0", "--workers", "2", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| a2c | 1 |" in out and "| zeros | 1 |" in out and "| reinforce | 1 |" in out
    rows = pd.read_csv(tmp_path / "benchmark.csv")
    assert rows["spec"].tolist() == ["a2c", "tests/test_benchmark.py:make_zeros", "examples.reinforce:make_agent"]
    assert rows["env_steps"].tolist() == [512, 0, 512] and rows["timesteps"].tolist() == [512, 0, 512]

    assert main(["benchmark", "--algo", "myalgo", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Unknown algorithms ['myalgo']" in err and "'ppo', 'a2c', 'sac', 'td3', 'dma'" in err
    assert "package.module:make_agent" in err and "path/to/file.py:make_agent" in err
    assert main(["benchmark", "--algo", "no_such_package.module:make_agent", "--output", str(tmp_path)]) == 2
    assert "no module 'no_such_package.module'" in capsys.readouterr().err
    assert main(["benchmark", "--algo", "tests/test_benchmark.py:make_everything", "--output", str(tmp_path)]) == 2
    assert "has no 'make_everything'" in capsys.readouterr().err
    assert main(["benchmark", "--algo", "tests/nowhere.py", "--output", str(tmp_path)]) == 2
    assert "No file" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- the open protocol


def test_unknown_algorithms_name_the_builtins_and_the_spec_forms():
    with pytest.raises(ValueError) as error:
        algorithms_of(["ppo", "myalgo"])
    message = str(error.value)
    assert "Unknown algorithms ['myalgo']" in message and "['ppo', 'a2c', 'sac', 'td3', 'dma', 'planner']" in message
    assert "'package.module:make_agent'" in message and "'path/to/file.py:make_agent'" in message
    assert "factory(env, seed, budget)" in message
    with pytest.raises(ValueError, match="Two algorithms are named"):
        algorithms_of(["ppo", "ppo"])
    with pytest.raises(ValueError, match="cannot name folders"):
        algorithms_of({"my algo": make_zeros})
    # names: a built-in's, a file's or module's name, name=spec, a mapping's keys
    names = [algorithm.name for algorithm in algorithms_of(
        ["ppo", "fast=a2c", str(EXAMPLE), f"{__file__}:make_zeros", f"r2={__file__}:make_zeros"])]
    assert names == ["ppo", "fast", "reinforce", "test_benchmark.make_zeros", "r2"]
    assert [a.spec for a in algorithms_of({"mine": make_zeros, "a": "a2c"})] == ["test_benchmark:make_zeros", "a2c"]


def test_a_factory_returning_a_plain_callable_is_benchmarked_and_resumed(tmp_path):
    """A factory's callable (of the observation, or of the observation and info) becomes a FunctionAgent, is saved
    with cloudpickle, plays the surrogate, and is resumed: finished runs are not trained again, a lost one is."""
    protocol = BenchmarkProtocol(timesteps=512, num_envs=4)
    rows = run_benchmark(protocol, {"zeros": make_zeros, "heavy": make_target_heavy}, seeds=2, output=tmp_path,
                         validate_runs=0, progress=False)
    surrogate = gym.make(protocol.surrogate_env_id)
    uniform = play_episode(FunctionAgent(lambda o, i: np.zeros(surrogate.action_space.shape)), surrogate, 0).record()
    zeros = rows[rows["algorithm"] == "zeros"]
    assert zeros["surrogate_balanced"].tolist() == [uniform["return"]] * 2  # the penalised return
    assert zeros["env_steps"].tolist() == [0, 0] and zeros["timesteps"].tolist() == [0, 0]  # it stepped nothing
    heavy = rows[rows["algorithm"] == "heavy"]
    assert heavy["env_steps"].tolist() == [128, 128] and heavy["timesteps"].tolist() == [512, 512]
    assert (heavy["surrogate_target_share"] > 0.9).all()
    assert isinstance(load_policy(tmp_path / "heavy-seed0"), FunctionAgent)
    assert json.loads((tmp_path / "heavy-seed0" / "policy.json").read_text())["format"] == "pickle"

    finished = (tmp_path / "zeros-seed0" / "run.json").stat().st_mtime_ns
    (tmp_path / "heavy-seed1" / "run.json").unlink()  # a run killed before its end
    again = run_benchmark(protocol, {"zeros": make_zeros, "heavy": make_target_heavy}, seeds=2, output=tmp_path,
                          validate_runs=0, progress=False)
    assert (tmp_path / "zeros-seed0" / "run.json").stat().st_mtime_ns == finished
    assert (tmp_path / "heavy-seed1" / "run.json").exists()
    pd.testing.assert_frame_equal(rows.drop(columns="train_seconds"), again.drop(columns="train_seconds"))
    # the same name from another factory does not resume these runs
    with pytest.raises(ValueError, match="was trained by .*make_zeros.*name this algorithm otherwise"):
        run_benchmark(protocol, {"zeros": make_target_heavy}, seeds=1, output=tmp_path, validate_runs=0)


def test_a_factory_returning_no_policy_gets_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match=r"algorithm 'nothing' \(test_benchmark:make_nothing\) returned for seed 0 "
                                          r"is a builtins.str; a policy is an agents.base.Agent, a Stable-Baselines3 "
                                          "model or a callable observation -> action"):
        run_benchmark(PROTOCOL, {"nothing": make_nothing}, seeds=1, output=tmp_path, progress=False)
    assert not (tmp_path / "nothing-seed0" / "run.json").exists()
    with pytest.raises(ValueError, match="The policy of algorithm 'wrong'.*failed on DataMixingSurrogate-v6.*shape"):
        run_benchmark(PROTOCOL, {"wrong": make_wrong_shape}, seeds=1, output=tmp_path, progress=False)
    with pytest.raises(PolicyError, match="is None"):
        as_agent(None)
    with pytest.raises(PolicyError, match="requires 3 arguments: a factory"):
        as_agent(make_zeros)
    with pytest.raises(PolicyError, match="the class FunctionAgent \\(return an instance\\)"):
        as_agent(FunctionAgent)


def test_policies_of_every_kind_become_agents():
    from stable_baselines3 import A2C

    env = make_training_env(PROTOCOL)
    model = A2C("MlpPolicy", sb3_env(env, 0), seed=0)
    surrogate = gym.make(ENV_ID)
    observation, info = surrogate.reset(seed=0)
    agent = as_agent(model)
    assert isinstance(agent, SB3Agent)
    agent.reset(MixingLayout.of(surrogate))
    assert agent.act(observation, info).shape == surrogate.action_space.shape
    one = as_agent(lambda observation: observation[:30] * 0 + 1)
    two = as_agent(lambda observation, info: np.full(30, len(info), dtype=np.float32))
    assert (one.act(observation, info) == 1).all() and (two.act(observation, info) == len(info)).all()
    uniform = Agent()
    assert as_agent(uniform) is uniform
    env.close()


def test_the_example_algorithm_is_benchmarked_through_run_benchmark(tmp_path):
    """examples/reinforce.py's factory, by its file spec, on two worker processes at 4,096 surrogate steps: it learns
    (far above the uniform mixture on the surrogate), and its rows read back from the CSV."""
    # version 1's surrogate, without a penalty: there a few thousand steps learn plenty
    protocol = BenchmarkProtocol(timesteps=4096, num_envs=16, surrogate_env_id="DataMixingSurrogate-v1")
    rows = run_benchmark(protocol, [f"{EXAMPLE}:make_agent"], seeds=2, output=tmp_path, validate_runs=0,
                         backend=Backend("process", 2), progress=False)
    write_report(rows, tmp_path)
    written = pd.read_csv(tmp_path / "benchmark.csv")
    assert list(written.columns) == list(COLUMNS)
    assert written["algorithm"].tolist() == ["reinforce"] * 2 and written["seed"].tolist() == [0, 1]
    assert (written["spec"] == f"{EXAMPLE}:make_agent").all()
    assert (written["protocol_version"] == protocol.version).all()
    assert (written["env_steps"] <= protocol.timesteps).all() and (written["timesteps"] == 4096).all()
    assert written["real_balanced"].isna().all()
    assert (written["surrogate_normalised"] > 200).all()  # uniform is about 0; a few thousand steps learn plenty
    print("REINFORCE at 4,096 surrogate steps, normalised on the surrogate:", written["surrogate_normalised"].tolist())


def test_the_example_benchmarks_itself_as_a_script(tmp_path):
    """`python examples/reinforce.py`: its factory object, from __main__, reaches the worker processes."""
    result = subprocess.run([sys.executable, str(EXAMPLE), "--seeds", "2", "--validate", "0", "--timesteps", "1024",
                             "--output", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| reinforce | 2 |" in result.stdout
    rows = pd.read_csv(tmp_path / "benchmark.csv")
    assert rows["spec"].tolist() == ["examples/reinforce.py:make_agent"] * 2


def test_a_benchmark_folder_from_before_the_open_protocol_resumes(tmp_path):
    """Run folders without policy.json nor spec (the built-ins' model.zip) load, and read as protocol version 1."""
    run_benchmark(PROTOCOL_V1, ["a2c"], 1, tmp_path, validate_runs=0, progress=False)
    run = tmp_path / "a2c-seed0" / "run.json"
    old = {key: value for key, value in json.loads(run.read_text()).items()
           if key in ("algorithm", "seed", "train_seconds", "surrogate_balanced", "surrogate_target_share", "protocol")}
    run.write_text(json.dumps(old))
    (tmp_path / "a2c-seed0" / "policy.json").unlink()
    protocol = json.loads((tmp_path / "protocol.json").read_text())
    del protocol["version"]
    (tmp_path / "protocol.json").write_text(json.dumps(protocol))
    rows = run_benchmark(PROTOCOL_V1, ["a2c"], 1, tmp_path, validate_runs=0, progress=False)
    assert rows["spec"].tolist() == ["a2c"] and rows["protocol_version"].tolist() == [1]
    assert rows["timesteps"].tolist() == [PROTOCOL_V1.timesteps] and rows["env_steps"].isna().all()
    assert isinstance(load_policy(tmp_path / "a2c-seed0"), SB3Agent)


# ---------------------------------------------------------------------------------------- evaluate_policy


def test_evaluate_policy_scores_with_intervals_and_resumes(tmp_path):
    """On the surrogate (normalised with the real env's small reference scores): one episode per seed, the mean
    with its t-interval and the IQM with its bootstrap interval, episodes kept under output and not played again."""
    target_heavy = make_target_heavy(make_training_env(PROTOCOL), 0, 0)
    scores = evaluate_policy(target_heavy, seeds=(1, 2, 3), output=tmp_path, env_id=ENV_ID, progress=False)
    assert scores.seeds == (1, 2, 3) and scores.preset is None and scores.field == "math"
    np.testing.assert_allclose(scores.normalised, get_normalized_score("DataMixing-v1", scores.balanced))
    assert scores.mean == pytest.approx(scores.normalised.mean()) and scores.iqm_low <= scores.iqm <= scores.iqm_high
    assert scores.mean_half_width == pytest.approx(0.0, abs=1e-6)  # the surrogate is deterministic
    assert str(scores).startswith("normalised score over 3 seed(s) of DataMixingSurrogate-v1: mean")
    assert sorted(path.name for path in (tmp_path / "episodes").iterdir()) == \
        ["policy__seed1.json", "policy__seed2.json", "policy__seed3.json"]
    written = (tmp_path / "episodes" / "policy__seed1.json").stat().st_mtime_ns
    again = evaluate_policy(target_heavy, seeds=(1, 2, 3), output=tmp_path, env_id=ENV_ID, progress=False)
    assert (tmp_path / "episodes" / "policy__seed1.json").stat().st_mtime_ns == written
    np.testing.assert_array_equal(again.balanced, scores.balanced)
    assert "IQM" in str(evaluate_policy(target_heavy, seeds=range(5), env_id=ENV_ID, progress=False)).split(";")[0]
    # a closure reaches worker processes (by cloudpickle) and plays the same episodes there
    on_workers = evaluate_policy(target_heavy, seeds=(1, 2, 3), env_id=ENV_ID, backend=Backend("process", 2),
                                 progress=False)
    np.testing.assert_array_equal(on_workers.balanced, scores.balanced)

    # a policy per seed (an algorithm's runs); several policies at once
    both = evaluate_policies({"runs": [target_heavy, make_zeros(make_training_env(PROTOCOL), 0, 0)],
                              "heavy": target_heavy}, seeds=(1, 2), env_id=ENV_ID, normalize=False, progress=False)
    assert both["runs"].normalised is None and both["runs"].balanced[0] == both["heavy"].balanced[0]
    assert both["runs"].balanced[1] != both["heavy"].balanced[1]
    with pytest.raises(ValueError, match="2 policies for 3 seeds"):
        evaluate_policies({"runs": [target_heavy] * 2}, seeds=(1, 2, 3), env_id=ENV_ID)
    # no reference scores on micro: an error before anything plays
    with pytest.raises(KeyError, match="No reference scores.*'micro'.*normalize=False"):
        evaluate_policy(target_heavy, env_kwargs={"preset": "micro"})
    with pytest.raises(PolicyError):
        evaluate_policy("uniform", env_id=ENV_ID)


