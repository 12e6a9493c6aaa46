"""Trajectory collection on micro: a Minari dataset equal to what the env returned, that survives a kill and resumes."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import psutil
import pytest
import torch
from conftest import MICRO, TINY_DATA

from agents.base import play_episode
from agents.cli import main
from agents.collect import MixturePlan, RulePlan, TiltPlan, _settings, collect, episode_policy
from agents.runner import differences
from mixing_gym.layout import MixingLayout
from mixing_gym.trajectories import (
    TrajectoryDatasetError,
    TrajectoryWriter,
    episode_metadata,
    load_trajectories,
    minari_dataset,
    read_metadata,
    save_trajectories,
    to_hf_dataset,
)

EPISODES = 4
SEED = 7
#: Episodes the killed collection aims at: enough that it is still running when the first one is committed.
KILLED_TARGET = 12
#: The env these tests collect on: v0's math space at the tiny data config (the collector is the same for v1).
V0 = "DataMixing-v0"


@pytest.fixture(scope="module")
def env_kwargs(prepared, cache_dir):
    return {"preset": MICRO, "data_config": TINY_DATA, "cache_dir": str(cache_dir), "num_steps": 2}


@pytest.fixture(scope="module")
def minari_root(tmp_path_factory):
    return tmp_path_factory.mktemp("minari")


@pytest.fixture(scope="module")
def collected(env_kwargs, minari_root):
    """An uninterrupted collection in two workers, in the folder where ``minari.load_dataset`` looks for its id."""
    summary = collect(env_kwargs, EPISODES, workers=2, output=minari_root / "mixing-gym" / "micro-v0", seed=SEED,
                      progress=False, env_id=V0)
    assert (summary.episodes, summary.new_episodes, summary.workers) == (EPISODES, EPISODES, 2)
    return summary.path


def _assert_same_episode(recorded, expected) -> None:
    assert (recorded.seed, recorded.policy) == (expected.seed, expected.policy)
    for name in ("observations", "actions", "rewards", "terminations", "truncations"):
        np.testing.assert_array_equal(getattr(recorded, name), getattr(expected, name), err_msg=name)


def test_collected_episodes_equal_what_the_env_returns(collected, env_kwargs):
    dataset = load_trajectories(collected)
    assert len(dataset.episodes) == EPISODES
    index_of_seed = {meta["seed"]: meta["index"] for meta in episode_metadata(collected)}
    assert [index_of_seed[e.seed] for e in dataset.episodes] == list(range(EPISODES))  # whoever finished first
    assert dataset.env_kwargs["preset"] == dataclasses.asdict(MICRO)  # objects are recorded as dicts
    assert len({episode.policy for episode in dataset.episodes}) == EPISODES
    assert len({episode.seed for episode in dataset.episodes}) == EPISODES
    extra = read_metadata(collected)["mixing_gym"]["extra"]
    assert extra["settings"]["seed"] == SEED and extra["preset"]["num_steps"] == 2

    threads = torch.get_num_threads()
    env = gym.make(dataset.env_id, **dataset.make_kwargs(), torch_threads=1)  # one thread, as in the workers
    try:
        assert dataset.layout == MixingLayout.of(env)  # the recorded layout round-trips exactly
        for index in (0, EPISODES - 1):
            label, policy, env_seed = episode_policy(MixturePlan(), SEED, index)
            _assert_same_episode(dataset.episodes[index], play_episode(policy, env, env_seed).trajectory(label))
    finally:
        env.close()
        torch.set_num_threads(threads)
    for episode in dataset.episodes:
        assert episode.terminations.tolist() == [False, True] and not episode.truncations.any()
        np.testing.assert_allclose(episode.mixtures.sum(axis=1), 1.0, atol=1e-5)


def test_the_dataset_loads_in_minari_and_hugging_face_datasets(collected, minari_root, monkeypatch, tmp_path):
    by_seed = {episode.seed: episode for episode in load_trajectories(collected).episodes}
    seeds = [meta["seed"] for meta in episode_metadata(collected)]  # Minari's storage order

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_root))
    assert "mixing-gym/micro-v0" in minari.list_local_datasets()
    stored = minari.load_dataset("mixing-gym/micro-v0")
    assert stored.total_episodes == EPISODES and stored.env_spec.id == "DataMixing-v0"
    assert stored.env_spec.kwargs["preset"] == dataclasses.asdict(MICRO)
    assert minari_dataset(collected).total_episodes == EPISODES
    for seed, episode in zip(seeds, stored.iterate_episodes()):
        np.testing.assert_array_equal(episode.observations, by_seed[seed].observations)
        np.testing.assert_array_equal(episode.actions, by_seed[seed].actions)
        np.testing.assert_array_equal(episode.rewards, by_seed[seed].rewards)

    table = to_hf_dataset(collected, cache_dir=tmp_path / "hf")
    assert table.features["rewards"].dtype == "float64"
    # not .with_format("numpy"): it casts to float32
    rows = {name: np.asarray(table[name]) for name in table.column_names}
    assert len(rows["step"]) == EPISODES * 3  # one row per observation: T + 1 of them
    for episode_id, seed in enumerate(seeds):
        part = rows["episode_id"] == episode_id
        assert rows["step"][part].tolist() == [0, 1, 2]
        np.testing.assert_array_equal(rows["observations"][part], by_seed[seed].observations)
        np.testing.assert_array_equal(rows["actions"][part][:-1], by_seed[seed].actions)  # the last: Minari's padding
        np.testing.assert_array_equal(rows["rewards"][part][:-1], by_seed[seed].rewards)


def test_recorded_episodes_are_never_overwritten(collected, env_kwargs, capsys):
    before = load_trajectories(collected)
    with pytest.raises(TrajectoryDatasetError, match="--resume"):
        collect(env_kwargs, EPISODES, output=collected, seed=SEED, progress=False, env_id=V0)
    with pytest.raises(TrajectoryDatasetError, match="seed: 7 recorded, 8 now"):
        collect(env_kwargs, EPISODES + 1, output=collected, seed=8, resume=True, progress=False, env_id=V0)
    with pytest.raises(TrajectoryDatasetError, match="env_kwargs.num_steps: 2 recorded, 3 now"):
        collect({**env_kwargs, "num_steps": 3}, EPISODES + 1, output=collected, seed=SEED, resume=True,
                progress=False, env_id=V0)
    done = collect(env_kwargs, EPISODES, output=collected, seed=SEED, resume=True, progress=False, env_id=V0)
    assert (done.episodes, done.new_episodes) == (EPISODES, 0)

    assert main(["collect", "--episodes", "2", "--output", str(collected), "--preset", "micro"]) == 2
    assert "--resume" in capsys.readouterr().err
    after = load_trajectories(collected)
    for old, new in zip(before.episodes, after.episodes, strict=True):
        _assert_same_episode(new, old)


def test_missing_corrupt_and_unrecordable_inputs_name_the_fix(collected, env_kwargs, tmp_path):
    with pytest.raises(TrajectoryDatasetError, match="mixing-gym collect --output"):
        load_trajectories(tmp_path / "nothing")
    broken = tmp_path / "broken"
    shutil.copytree(collected, broken)
    shutil.rmtree(broken / "data" / "1")
    with pytest.raises(TrajectoryDatasetError, match="corrupt.*Collect it again"):
        load_trajectories(broken)
    (broken / "data" / "metadata.json").write_text("{not json")
    with pytest.raises(TrajectoryDatasetError, match=r"corrupt: cannot read .*metadata\.json"):
        load_trajectories(broken)
    with pytest.raises(ValueError, match=r"'reward'.*plain value"):
        collect({**env_kwargs, "reward": lambda source, target: target}, 1, output=tmp_path / "x", progress=False,
                env_id=V0)
    with pytest.raises(ValueError, match="Cannot perturb baselines"):
        MixturePlan(baselines=("regmix",))


def test_a_writer_discards_what_a_killed_writer_left_uncommitted(collected, tmp_path, monkeypatch):
    """A kill after an episode folder was moved into place but before the commit, and one while staging."""
    copy = tmp_path / "copy"
    shutil.copytree(collected, copy)
    shutil.copytree(copy / "data" / "0", copy / "data" / str(EPISODES))  # an uncommitted episode
    (copy / "data" / ".staging").mkdir()
    (copy / "data" / ".staging" / "part-0.arrow").write_bytes(b"half an episode")
    assert len(load_trajectories(copy).episodes) == EPISODES  # readers see committed episodes only
    with TrajectoryWriter(copy) as writer:
        assert writer.num_episodes == EPISODES
        expected = sorted([*map(str, range(EPISODES)), "metadata.json"])
        assert sorted(p.name for p in (copy / "data").iterdir()) == expected
        with pytest.raises(TrajectoryDatasetError, match="Another process is writing"):
            TrajectoryWriter(copy)

    monkeypatch.chdir(tmp_path)  # a relative folder (Minari's own size count fails on one)
    save_trajectories(load_trajectories(collected), "relative")
    for saved, original in zip(load_trajectories("relative").episodes, load_trajectories(collected).episodes,
                               strict=True):
        _assert_same_episode(saved, original)


def _committed_episodes(path: Path) -> int:
    try:
        return read_metadata(path)["total_episodes"]
    except TrajectoryDatasetError:
        return 0


def test_a_killed_collection_keeps_its_episodes_and_resumes_to_the_uninterrupted_ones(collected, env_kwargs, tmp_path):
    output = tmp_path / "killed"
    tests = Path(__file__).parent
    script = (f"import sys; sys.path.insert(0, {str(tests)!r}); from conftest import MICRO, TINY_DATA; "
              "from agents.collect import collect; "
              f"collect({{'preset': MICRO, 'data_config': TINY_DATA, 'cache_dir': {env_kwargs['cache_dir']!r}, "
              f"'num_steps': 2}}, {KILLED_TARGET}, workers=2, output={str(output)!r}, seed={SEED}, progress=False, "
              f"env_id={V0!r})")
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 180
        while _committed_episodes(output) == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None and _committed_episodes(output) > 0, "no episode committed while it ran"
        helpers = psutil.Process(process.pid).children(recursive=True)  # workers, forkserver, resource tracker
        process.send_signal(signal.SIGKILL)  # the collector only: its workers must notice and end themselves
        assert process.wait() == -signal.SIGKILL
        _, alive = psutil.wait_procs(helpers, timeout=20)
        assert not alive, f"processes {alive} outlived the killed collector"
    finally:
        with contextlib.suppress(ProcessLookupError):  # the whole session, should a helper process remain
            os.killpg(process.pid, signal.SIGKILL)

    survived = load_trajectories(output)
    assert 1 <= len(survived.episodes) < KILLED_TARGET

    summary = collect(env_kwargs, KILLED_TARGET, workers=2, output=output, seed=SEED, resume=True, progress=False,
                      env_id=V0)
    assert summary.new_episodes == KILLED_TARGET - len(survived.episodes)
    resumed = load_trajectories(output)
    assert sorted(meta["index"] for meta in episode_metadata(output)) == list(range(KILLED_TARGET))
    for index, episode in enumerate(load_trajectories(collected).episodes):  # the uninterrupted run's episodes
        _assert_same_episode(resumed.episodes[index], episode)


def test_tilted_episodes_play_their_target_shares_on_a_pool_of_common_seeds(env_kwargs):
    plan = MixturePlan(baseline_share=0.0, tilts=TiltPlan(share=1.0, two_phase=1.0, shift=0.2), seed_pool=3)
    draws = [episode_policy(plan, SEED, index) for index in range(7)]
    assert all(label.startswith("tilt(target=") and "->" in label for label, _, _ in draws)
    env_seeds = [env_seed for *_, env_seed in draws]
    assert env_seeds == env_seeds[:3] * 2 + env_seeds[:1] and len(set(env_seeds[:3])) == 3
    assert env_seeds == [env_seed for *_, env_seed in (episode_policy(plan, SEED, i) for i in range(7))]

    env = gym.make(V0, **env_kwargs, action_mode="weights", torch_threads=1)
    try:
        _, policy, env_seed = draws[0]
        episode = play_episode(policy, env, env_seed)
        target = episode.layout.target_mask
        shares = [float(np.asarray(info["mixture"])[target].sum()) for info in episode.infos]
    finally:
        env.close()
    np.testing.assert_allclose(shares, policy.target_shares, atol=1e-5)  # micro's 2 steps: one per phase
    assert policy.target_shares[0] != policy.target_shares[1]


def test_rule_episodes_weight_each_field_by_the_domains_descriptors_and_leave_other_plans_as_they_were():
    from mixing_gym.reference import REFERENCE_TRAJECTORIES
    from mixing_gym.trajectories import load_trajectories

    layout = load_trajectories(REFERENCE_TRAJECTORIES).layout
    plan = MixturePlan(baseline_share=0.3, tilts=TiltPlan(share=0.3), rules=RulePlan(share=0.4))
    draws = [episode_policy(plan, SEED, index) for index in range(12)]
    rules = [(label, policy) for label, policy, _ in draws if label.startswith("rule(")]
    assert rules and [label for label, *_ in draws] == [episode_policy(plan, SEED, i)[0] for i in range(12)]
    for _, policy in rules:
        policy.reset(layout)
        weights = policy.mixture(np.zeros(len(layout.observation_names)), {})
        assert weights[layout.target_mask].sum() == pytest.approx(policy.target_share)
        assert 0.1 <= policy.target_share <= 0.6 and 0.0 <= policy.scale <= 3.0
    # Without rules a plan draws the episodes it always drew: the recorded collections resume unchanged.
    without = MixturePlan(baseline_share=0.3, tilts=TiltPlan(share=0.3))
    assert [episode_policy(without, SEED, i)[0] for i in range(12)] == [
        episode_policy(MixturePlan(baseline_share=0.3, tilts=TiltPlan(share=0.3), rules=None), SEED, i)[0]
        for i in range(12)]
    recorded_before_rules = _settings({}, without, SEED)
    del recorded_before_rules["plan"]["rules"]
    assert differences(recorded_before_rules, _settings({}, without, SEED)) == []
    with pytest.raises(ValueError, match="add up to more than 1"):
        MixturePlan(baseline_share=0.5, tilts=TiltPlan(share=0.3), rules=RulePlan(share=0.3))
    with pytest.raises(ValueError, match="scale must be a range"):
        RulePlan(scale=(2.0, 1.0))


def test_tilt_settings_are_checked_and_a_plan_change_is_named():
    with pytest.raises(ValueError, match="add up to more than 1"):
        MixturePlan(baseline_share=0.7, tilts=TiltPlan(share=0.4))
    with pytest.raises(ValueError, match="target_share must be a range"):
        TiltPlan(target_share=(0.5, 1.5))
    with pytest.raises(ValueError, match="seed_pool must be at least 1"):
        MixturePlan(seed_pool=0)
    recorded = _settings({"preset": "micro"}, MixturePlan(), SEED)
    assert differences(recorded, _settings({"preset": "micro"}, MixturePlan(seed_pool=4), SEED)) == [
        "plan.seed_pool: None recorded, 4 now"]
