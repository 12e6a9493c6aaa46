"""DataMixingSurrogate-v0: fit on real micro trajectories, fidelity, API checks, vectorisation, storage, bad input."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import MICRO, TINY_DATA

import mixing_gym  # noqa: F401  (registers the envs)
from agents.base import FunctionAgent, play_episode
from mixing_gym.envs.surrogate import (
    DataMixingSurrogateEnv,
    DataMixingSurrogateVectorEnv,
    rollout_fidelity,
    schedule_return,
)
from mixing_gym.surrogate import ARRAYS_FILE, SurrogateModel, fidelity
from mixing_gym.trajectories import TrajectoryDataset

NUM_STEPS = 3
NUM_EPISODES = 6
#: The real env's seed-to-seed standard deviation of the source and target scores on this micro config,
#: measured over 5 seeds x 9 steps of 3 random mixture schedules (0.0008 and 0.0016).
SEED_STD = np.array([0.0008, 0.0016])


def _record(env: gym.Env, episodes: int, seed: int) -> TrajectoryDataset:
    """Play ``episodes`` episodes of random mixtures on a weights-mode env: a uniform target-field share
    (so that near-single-field mixtures occur), split within each field by a Dirichlet (sparse to even)."""
    target = np.array([field == "target" for field in env.unwrapped.domain_fields])
    rng = np.random.default_rng(seed)

    def field_split(alpha: float) -> FunctionAgent:
        def act(observation, info):
            within = rng.dirichlet(np.full(len(target), alpha))
            share = rng.uniform()
            return np.where(target, share * within / within[target].sum(), (1 - share) * within / within[~target].sum())
        return FunctionAgent(act)

    dataset = TrajectoryDataset.from_env(env, {"preset": "micro", "num_steps": NUM_STEPS, "action_mode": "weights",
                                               "aggregate": "bpb"})
    dataset.episodes = [play_episode(field_split(alpha), env, seed + number).trajectory(
                            f"uniform field share, dirichlet(alpha={alpha}) within")
                        for number, alpha in ((n, (0.3, 1.0, 3.0)[n % 3]) for n in range(episodes))]
    return dataset


@pytest.fixture(scope="module")
def real_env(prepared, cache_dir):
    env = gym.make("DataMixing-v0", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA, num_steps=NUM_STEPS,
                   action_mode="weights")
    yield env
    env.close()


@pytest.fixture(scope="module")
def dataset(real_env):
    return _record(real_env, NUM_EPISODES, seed=100)


@pytest.fixture(scope="module")
def model(dataset):
    return SurrogateModel.fit(dataset)


def _target_mask(model: SurrogateModel) -> np.ndarray:
    return model.layout.target_mask


def test_registration_and_spaces_match_the_real_env(model, real_env):
    assert gym.spec("DataMixingSurrogate-v0").entry_point == "mixing_gym.envs.surrogate:DataMixingSurrogateEnv"
    env = gym.make("mixing_gym:DataMixingSurrogate-v0", surrogate=model)
    real = real_env.unwrapped
    assert env.observation_space == real.observation_space
    assert env.action_space == gym.spaces.Box(-1, 1, (real.num_domains,), np.float32)
    for attribute in ("domain_names", "domain_fields", "benchmark_names", "observation_names", "num_steps"):
        assert getattr(env.unwrapped, attribute) == getattr(real, attribute)
    vector = gym.make_vec("DataMixingSurrogate-v0", num_envs=4, surrogate=model)
    assert isinstance(vector, DataMixingSurrogateVectorEnv)
    assert vector.single_observation_space == real.observation_space


def test_fit_reproduces_the_recorded_steps_within_tolerance(model, dataset):
    """The surrogate reproduces the steps it was fit on, within two stated tolerances.

    - One step: predicted per-step changes of the benchmark improvements, from the recorded observations
      and mixtures, explain at least half of their variance (pooled R^2 >= 0.5; the fit reaches 0.86
      here). Predicting no change, or the mean change, scores R^2 <= 0.
    - Whole episodes: replaying each recorded mixture schedule from reset, the RMS error of the source
      and target scores over all steps is at most 4x the real env's seed-to-seed std (``SEED_STD``). A
      model of the expected dynamics cannot follow one seed's noise, which accumulates over an episode,
      so the bound is in units of that noise; 4x leaves room for the model's error (1.5x and 1x here)
      while a model that learns nothing fails it: predicting no change errs by the recorded scores
      themselves, 10x and 15x ``SEED_STD`` here (checked below, so the bound is never vacuous).
    """
    assert fidelity(model, dataset)["pooled"]["r2"] >= 0.5
    assert model.metadata["fit"]["transitions"] == NUM_EPISODES * NUM_STEPS

    k, b = model.num_domains, model.num_benchmarks
    env = DataMixingSurrogateEnv(model, action_mode="weights")
    errors, recorded = [], []
    for episode in dataset.episodes:
        env.reset(seed=episode.seed)
        for action, real_observation in zip(episode.actions, episode.observations[1:]):
            observation, *_ = env.step(action)
            errors.append(observation[k + b:k + b + 2] - real_observation[k + b:k + b + 2])
            recorded.append(real_observation[k + b:k + b + 2])
    tolerance = 4 * SEED_STD
    rms_error = np.sqrt(np.mean(np.square(errors), axis=0))
    assert np.all(rms_error <= tolerance), f"RMS error {rms_error} over tolerance {tolerance}"
    assert np.all(np.sqrt(np.mean(np.square(recorded), axis=0)) > tolerance)  # no change would fail


def test_surrogate_ranks_fixed_mixtures_as_the_real_env(model, real_env):
    """Source-only, target-only and 50:50 schedules: same order of returns on the surrogate and the real env."""
    target = _target_mask(model)
    schedules = {"source_only": (~target).astype(float), "target_only": target.astype(float),
                 "half": target / target.sum() + ~target / (~target).sum()}
    real_returns, surrogate_returns = {}, {}
    for name, weights in schedules.items():
        real_env.reset(seed=0)
        real_returns[name] = sum(real_env.step(weights.astype(np.float32))[1] for _ in range(NUM_STEPS))
        surrogate_returns[name] = schedule_return(model, weights)
    assert sorted(real_returns, key=real_returns.get) == sorted(surrogate_returns, key=surrogate_returns.get), (
        real_returns, surrogate_returns)


def test_fidelity_report_on_held_out_episodes(dataset):
    fit_on, held_out = (dataclasses.replace(dataset, episodes=part)
                        for part in (dataset.episodes[:4], dataset.episodes[4:]))
    report = fidelity(SurrogateModel.fit(fit_on), held_out)
    assert report["transitions"] == 2 * NUM_STEPS
    assert set(report["benchmarks"]) == set(dataset.layout.benchmark_names)
    for scores in [report["pooled"], report["source_score"], report["target_score"], *report["benchmarks"].values()]:
        assert set(scores) == {"r2", "spearman"} and scores["r2"] <= 1 and -1 <= scores["spearman"] <= 1
    assert report["pooled"]["spearman"] > 0.5  # held-out changes are ranked, not just fit


def test_rollout_fidelity_replays_whole_episodes(model, dataset):
    """On episodes the surrogate itself played, a replay is exact; on real held-out ones errors are reported."""
    env = gym.make("DataMixingSurrogate-v0", surrogate=model, action_mode="weights")
    own = _record(env, 4, seed=3)
    env.close()
    report = rollout_fidelity(model, own, top_fraction=1.0)
    assert report["episodes"] == 4 and report["near_best"]["pairs"] == 6
    assert max(report["step_rmse"].values()) < 1e-6 and report["final"]["rmse"] < 1e-6  # float32 observations
    assert report["near_best"]["order_agreement"] == 1.0 and report["final"]["spearman"] == pytest.approx(1.0)

    fit_on, held_out = (dataclasses.replace(dataset, episodes=part)
                        for part in (dataset.episodes[:4], dataset.episodes[4:]))
    report = rollout_fidelity(SurrogateModel.fit(fit_on), held_out)
    assert report["episodes"] == 2 and report["near_best"] == {**report["near_best"], "episodes": 2, "pairs": 1}
    assert 0 < report["step_rmse"]["source_score"] < 0.1 and 0 < report["final"]["rmse"] < 0.1
    with pytest.raises(ValueError, match="at least 2 held-out"):
        rollout_fidelity(model, dataclasses.replace(dataset, episodes=dataset.episodes[:1]))


def test_gymnasium_and_sb3_checkers_pass_without_warnings(model):
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    for noise in (0.0, 1.0):
        env = DataMixingSurrogateEnv(model, noise=noise)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gym_check(env, skip_render_check=True)
            sb3_check(env, warn=True)
        ours = [w for w in caught if "gymnasium" in w.filename or "stable_baselines3" in w.filename]
        assert not ours, [str(w.message) for w in ours]


def _episode(env: gym.Env, seed: int, actions: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
    observations, rewards = [env.reset(seed=seed)[0]], []
    for action in actions:
        observation, reward, *_ = env.step(action)
        observations.append(observation)
        rewards.append(reward)
    return np.array(observations), rewards


def test_same_seed_and_actions_give_the_same_episode_and_rewards_sum_to_the_objective(model):
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, model.num_domains).astype(np.float32) for _ in range(NUM_STEPS)]
    noisy = gym.make("DataMixingSurrogate-v0", surrogate=model, noise=1.0)
    first, second, other = (_episode(noisy, seed, actions) for seed in (3, 3, 4))
    assert np.array_equal(first[0], second[0]) and first[1] == second[1]
    assert not np.array_equal(first[0], other[0])  # the noise follows the seed
    expected = gym.make("DataMixingSurrogate-v0", surrogate=model)
    assert np.array_equal(_episode(expected, 3, actions)[0], _episode(expected, 4, actions)[0])

    env = gym.make("DataMixingSurrogate-v0", surrogate=model, reward="weighted", reward_coef=0.8)
    env.reset(seed=0)
    rewards, terminated = [], False
    while not terminated:
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
    assert len(rewards) == NUM_STEPS and observation[-1] == 1.0 and truncated is False
    assert np.isclose(sum(rewards), 0.8 * info["target_score"] + 0.2 * info["source_score"])
    assert info["scores"]["source_score"] == info["source_score"]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(env.action_space.sample())


def test_vector_env_steps_exactly_as_single_envs(model):
    """The one-numpy-call vector env equals Gymnasium's SyncVectorEnv of single envs, autoreset included."""
    kwargs = {"surrogate": model, "noise": 0.5, "reward": "min"}
    vector = gym.make_vec("DataMixingSurrogate-v0", num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
    reference = gym.make_vec("DataMixingSurrogate-v0", num_envs=3, vectorization_mode="sync", **kwargs)
    observations, _ = vector.reset(seed=5)
    expected, _ = reference.reset(seed=5)
    assert np.array_equal(observations, expected)
    rng = np.random.default_rng(1)
    for _ in range(2 * NUM_STEPS + 2):  # across an episode end and its autoreset
        actions = rng.uniform(-1, 1, vector.action_space.shape).astype(np.float32)
        got, want = vector.step(actions), reference.step(actions)
        for part, (mine, theirs) in enumerate(zip(got[:4], want[:4])):
            np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7, err_msg=f"step output {part}")
        np.testing.assert_allclose(got[4]["mixture"], want[4]["mixture"], rtol=1e-6, atol=1e-9)
        for key in ("source_score", "target_score", "objective"):
            assert (key in got[4]) == (key in want[4])
            if key in want[4]:
                assert np.array_equal(got[4][f"_{key}"], want[4][f"_{key}"])
                np.testing.assert_allclose(got[4][key], want[4][key], rtol=1e-6, atol=1e-9)


def test_save_and_load_round_trip(model, tmp_path):
    folder = model.save(tmp_path / "surrogate")
    loaded = SurrogateModel.load(folder)
    assert loaded.metadata == model.metadata
    for name in ("coefficients", "residual_std", "feature_range"):
        assert np.array_equal(getattr(loaded, name), getattr(model, name))
    actions = [np.full(model.num_domains, 0.5, np.float32)] * NUM_STEPS
    from_path = gym.make("DataMixingSurrogate-v0", surrogate=str(folder))
    assert np.array_equal(_episode(from_path, 0, actions)[0],
                          _episode(gym.make("DataMixingSurrogate-v0", surrogate=model), 0, actions)[0])

    (folder / ARRAYS_FILE).write_bytes((folder / ARRAYS_FILE).read_bytes()[:-8])
    with pytest.raises(ValueError, match="checksum"):
        SurrogateModel.load(folder)
    with pytest.raises(FileNotFoundError, match="SurrogateModel.fit"):
        SurrogateModel.load(tmp_path / "nothing")


def test_render_ansi(model):
    env = DataMixingSurrogateEnv(model, render_mode="ansi")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    text = env.render()
    assert "step 1/" in text and model.layout.domain_names[0] in text and "target_score" in text
    assert text.startswith("DataMixingSurrogateEnv")  # made without gym.make: no spec, its class's name
    made = gym.make("DataMixingSurrogate-v1", render_mode="ansi")
    made.reset(seed=0)
    assert made.render().startswith("DataMixingSurrogate-v1  step 0/")


@pytest.mark.parametrize("make, message", [
    (lambda m: gym.make("DataMixingSurrogate-v0"), "needs surrogate="),
    (lambda m: gym.make("DataMixingSurrogate-v0", surrogate=m, reward="best"), "Unknown reward 'best'"),
    (lambda m: gym.make("DataMixingSurrogate-v0", surrogate=m, noise=-1.0), "noise must be"),
    (lambda m: gym.make("DataMixingSurrogate-v0", surrogate=m, action_mode="mixture"), "Unknown action_mode"),
    (lambda m: gym.make_vec("DataMixingSurrogate-v0", num_envs=0, surrogate=m), "num_envs"),
])
def test_bad_arguments(model, make, message):
    with pytest.raises(ValueError, match=message):
        make(model)


def test_bad_actions_and_schedules(model):
    env = DataMixingSurrogateEnv(model, action_mode="weights")
    with pytest.raises(RuntimeError, match="Call reset"):
        env.step(np.ones(model.num_domains, np.float32))
    env.reset(seed=0)
    for action, message in [(np.ones(model.num_domains + 1, np.float32), "shape"),
                            (np.full(model.num_domains, np.nan, np.float32), "NaN"),
                            (np.zeros(model.num_domains, np.float32), "All weights are zero")]:
        with pytest.raises(ValueError, match=message):
            env.step(action)
    vector = DataMixingSurrogateVectorEnv(2, model)
    vector.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, "):
        vector.step(np.zeros(model.num_domains, np.float32))
    with pytest.raises(ValueError, match="reset got 3 seeds for 2 envs"):
        vector.reset(seed=[0, 1, 2])
    with pytest.raises(ValueError, match="schedule has shape"):
        schedule_return(model, np.ones((NUM_STEPS + 1, model.num_domains)))


def test_bad_trajectories_are_rejected(dataset):
    with pytest.raises(ValueError, match="no episodes"):
        SurrogateModel.fit(dataclasses.replace(dataset, episodes=[]))
    with pytest.raises(ValueError, match="JSON-serialisable"):
        SurrogateModel.fit(dataclasses.replace(dataset, env_kwargs={"preset": MICRO}))
    k, b = dataset.layout.num_domains, dataset.layout.num_benchmarks
    shifted = [dataclasses.replace(e, observations=e.observations + np.eye(k + b + 3, dtype=np.float32)[k + b])
               for e in dataset.episodes]  # source scores no longer the mean of the source benchmarks
    with pytest.raises(ValueError, match="recorded source/target scores differ"):
        SurrogateModel.fit(dataclasses.replace(dataset, episodes=shifted))
    model = SurrogateModel.fit(dataset)
    with pytest.raises(ValueError, match="num_steps"):
        fidelity(model, dataclasses.replace(dataset, layout=dataclasses.replace(dataset.layout,
                                                                                num_steps=NUM_STEPS + 1)))


#: Run in a fresh interpreter where importing torch, lm-eval or transformers fails, as on a machine without them.
TORCH_FREE_SCRIPT = """
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "lm_eval", "transformers"):
            raise ImportError(f"{name} is blocked in this test")

sys.meta_path.insert(0, Blocked())
import gymnasium as gym
import numpy as np
import mixing_gym
from agents import make_agent, play_episode
from mixing_gym.envs.surrogate import schedule_return
from mixing_gym.surrogate import SurrogateModel, fidelity
from mixing_gym.trajectories import load_trajectories

dataset = load_trajectories(sys.argv[2])
model = SurrogateModel.fit(dataset)
assert fidelity(model, dataset)["transitions"] == dataset.total_steps
env = gym.make("DataMixingSurrogate-v0", surrogate=sys.argv[1])
for name in ("random", "uniform", "fixed_ratio", "linear_schedule", "odm", "doremi"):
    record = play_episode(make_agent(name), env, seed=0).record()
    assert np.isfinite(record["balanced"]), name
vector = gym.make_vec("DataMixingSurrogate-v0", num_envs=4, surrogate=model)
vector.reset(seed=0)
vector.step(vector.action_space.sample())
assert np.isfinite(schedule_return(model, model.layout.field_mixture(0.5)))
loaded = [name for name in ("torch", "lm_eval", "transformers") if name in sys.modules]
assert not loaded, loaded
print("torch-free ok")
"""


def test_surrogate_and_baselines_run_without_torch_and_lm_eval(model, dataset, tmp_path):
    import subprocess
    import sys

    from mixing_gym.trajectories import save_trajectories

    save_trajectories(dataset, tmp_path / "trajectories")
    result = subprocess.run([sys.executable, "-c", TORCH_FREE_SCRIPT, str(model.save(tmp_path / "surrogate")),
                             str(tmp_path / "trajectories")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "torch-free ok" in result.stdout, result.stderr[-3000:]
