"""The episode runner (:mod:`agents.runner`) on the micro proxy: a store it resumes from, episodes of another env
refused, commits that survive a job's error, and the same episodes here and on a process pool."""

from __future__ import annotations

import json
import re
import shutil

import gymnasium as gym
import pytest
import torch
from conftest import MICRO, TINY_DATA

from agents.backends import Backend
from agents.base import play_episode
from agents.baselines import FixedRatio, OnlineDataMixing, RegMix, Uniform
from agents.runner import EpisodeJob, EpisodeRunner, EpisodeStore, run_episodes
from mixing_gym.env_config import episode_cache_key
from mixing_gym.trajectories import as_json

V0 = "DataMixing-v0"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread, as in tests/test_agents.py: two threads spin-waiting on two shared cores make a micro
    step many times slower. The process's setting is restored for the other modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env_kwargs(prepared, cache_dir):
    return {"preset": MICRO, "data_config": TINY_DATA, "cache_dir": str(cache_dir), "num_steps": 2,
            "benchmarks": "bpb"}


def _jobs() -> list[EpisodeJob]:
    return [EpisodeJob("uniform__seed0", Uniform(), 0, metadata={"agent": "uniform"}),
            EpisodeJob("odm__seed1", OnlineDataMixing(), 1, metadata={"agent": "odm"})]


@pytest.fixture(scope="module")
def stored(env_kwargs, tmp_path_factory):
    """A store of the two jobs of :func:`_jobs`, played here (tests that add to it copy it first)."""
    folder = tmp_path_factory.mktemp("runner") / "store"
    assert run_episodes(_jobs(), V0, env_kwargs, EpisodeStore(folder), progress=False) == 2
    return folder


def _entries(folder) -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.iterdir())}


def test_a_rerun_plays_only_the_jobs_its_store_misses(env_kwargs, stored, tmp_path):
    folder = tmp_path / "store"
    shutil.copytree(stored, folder)
    entries = _entries(folder)
    assert list(entries) == ["odm__seed1.json", "uniform__seed0.json"]
    entry = entries["uniform__seed0.json"]
    assert entry["key"] == "uniform__seed0" and (entry["seed"], entry["max_steps"]) == (0, None)
    assert entry["metadata"] == {"agent": "uniform"} and entry["env"] == episode_cache_key(V0, env_kwargs)
    env = gym.make(V0, **env_kwargs)
    try:
        assert entry["episode"] == as_json(play_episode(Uniform(), env, 0).record())  # what the env plays
    finally:
        env.close()

    stamps = {path: path.stat().st_mtime_ns for path in folder.iterdir()}
    more = [*_jobs(), EpisodeJob("half__seed2", FixedRatio(0.5), 2, max_steps=1)]
    store = EpisodeStore(folder)  # as a new process sees it: from the files
    assert run_episodes(more, V0, env_kwargs, store, progress=False) == 1
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps  # the stored episodes were not played again
    records = store.episodes(more, episode_cache_key(V0, env_kwargs))
    assert [len(record["steps"]) for record in records] == [2, 2, 1]  # max_steps stops the third after one step
    assert records[:2] == [entries["uniform__seed0.json"]["episode"], entries["odm__seed1.json"]["episode"]]
    assert run_episodes(more, V0, env_kwargs, EpisodeStore(folder), progress=False) == 0

    with pytest.raises(ValueError, match="job 'uniform__seed0' otherwise: seed: 0 recorded, 5 now.*another key"):
        run_episodes([EpisodeJob("uniform__seed0", Uniform(), 5, metadata={"agent": "uniform"})], V0, env_kwargs,
                     EpisodeStore(folder), progress=False)


def test_episodes_of_another_env_configuration_are_an_error_naming_the_folder(env_kwargs, stored):
    jobs = _jobs()
    with pytest.raises(ValueError, match=re.escape(str(stored)) + " holds episodes played on another env "
                                         "configuration.*another folder, or delete that one"):
        run_episodes(jobs, V0, {**env_kwargs, "reward": "target"}, EpisodeStore(stored), progress=False)
    with pytest.raises(ValueError, match="another env configuration"):
        run_episodes(jobs, "DataMixing-v1", env_kwargs, EpisodeStore(stored), progress=False)
    # Where and how fast an episode runs is not part of its configuration.
    assert run_episodes(jobs, V0, {**env_kwargs, "auto_prepare": False, "torch_threads": 1}, EpisodeStore(stored),
                        progress=False) == 0


def test_a_job_that_raises_leaves_the_earlier_commits_whole(env_kwargs, tmp_path):
    jobs = [EpisodeJob("first", Uniform(), 0, max_steps=1), EpisodeJob("broken", RegMix(), 0),  # RegMix unlearned
            EpisodeJob("after", Uniform(), 1, max_steps=1)]
    with pytest.raises(RuntimeError, match="call learn"):
        run_episodes(jobs, V0, env_kwargs, EpisodeStore(tmp_path), progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first.json"]  # whole, and nothing half-written
    assert run_episodes([jobs[0], jobs[2]], V0, env_kwargs, EpisodeStore(tmp_path), progress=False) == 1

    with pytest.raises(ValueError, match="cannot name a file"):
        EpisodeJob("a/b", Uniform(), 0)
    with pytest.raises(ValueError, match=r"unique; repeated: \['first'\]"):
        run_episodes([jobs[0], jobs[0]], V0, env_kwargs, EpisodeStore(tmp_path), progress=False)


def test_a_process_pool_records_what_one_env_here_records(env_kwargs, stored, tmp_path):
    folder = tmp_path / "pool"
    with EpisodeRunner(V0, env_kwargs, EpisodeStore(folder), Backend("process", workers=2), progress=False) as runner:
        assert runner.run(_jobs()) == 2
        assert runner.workers == 2
        # A job that raises in a worker raises here; the jobs committed before it stay.
        with pytest.raises(RuntimeError, match="call learn"):
            runner.run([EpisodeJob("broken", RegMix(), 0)])
    assert _entries(folder) == _entries(stored)

    with Backend("process", workers=1).executor() as pool:  # the workers' thread policy
        assert pool.submit(torch.get_num_threads).result() == 1
