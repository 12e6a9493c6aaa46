"""The Ray backend on a local Ray of 2 CPUs: the same episodes as the process pool, a killed worker's episode
played again exactly once, a killed driver resumed, and the search baselines learning what they learn here."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import psutil
import pytest
from conftest import MICRO, TINY_DATA

from agents.backends import Backend
from agents.baselines import OnlineDataMixing, RegMix, Uniform
from agents.collect import collect
from agents.harness import evaluate_agents
from agents.search import MixtureSearch
from mixing_gym.trajectories import episode_metadata, load_trajectories

ray = pytest.importorskip("ray", reason='the Ray backend is an extra: pip install -e ".[ray]"')

EPISODES = 4
SEED = 11
#: Episodes the killed driver aims at: enough that it is still running when its first one is committed.
KILLED_TARGET = 10
V0 = "DataMixing-v0"


@pytest.fixture(scope="module")
def env_kwargs(prepared, cache_dir):
    return {"preset": MICRO, "data_config": TINY_DATA, "cache_dir": str(cache_dir), "num_steps": 2}



@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: a backend joins a running Ray and leaves it running."""
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_collection(env_kwargs, tmp_path_factory):
    """What the process pool records: the episodes every Ray collection here must equal."""
    output = tmp_path_factory.mktemp("local") / "episodes"
    collect(env_kwargs, KILLED_TARGET, workers=2, output=output, seed=SEED, progress=False, env_id=V0)
    return load_trajectories(output).episodes


def _assert_same_episodes(path: Path, expected) -> None:
    indices = sorted(meta["index"] for meta in episode_metadata(path))
    assert indices == list(range(len(indices))), f"episodes missing or recorded twice: {indices}"
    for index, episode in enumerate(load_trajectories(path).episodes):  # in index order
        np.testing.assert_array_equal(episode.observations, expected[index].observations)
        np.testing.assert_array_equal(episode.actions, expected[index].actions)
        np.testing.assert_array_equal(episode.rewards, expected[index].rewards)
        assert (episode.seed, episode.policy) == (expected[index].seed, expected[index].policy)


def _episode_workers() -> list[psutil.Process]:
    """Ray worker processes running an episode now (Ray titles a worker by the task it runs)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if (process.info["cmdline"] or [""])[0].startswith("ray::play_job"):
                found.append(process)
    return found


def test_a_worker_killed_mid_episode_has_that_episode_played_again_once(local_ray, env_kwargs, local_collection,
                                                                        tmp_path):
    output = tmp_path / "episodes"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            collect(env_kwargs, EPISODES, output=output, seed=SEED, progress=False, env_id=V0,
                    backend=Backend("ray", workers=2))
        except BaseException as error:  # noqa: BLE001  (re-raised in the test's thread)
            errors.append(error)

    collector = threading.Thread(target=run)
    collector.start()
    killed = None
    deadline = time.monotonic() + 180
    while killed is None and collector.is_alive() and time.monotonic() < deadline:
        workers = _episode_workers()
        if workers:
            killed = workers[0]
            killed.send_signal(signal.SIGKILL)
        time.sleep(0.05)
    collector.join(timeout=300)
    assert killed is not None, "no Ray worker was seen running an episode"
    assert not killed.is_running(), "the worker survived its kill"
    assert not errors, errors
    assert len(load_trajectories(output).episodes) == EPISODES
    _assert_same_episodes(output, local_collection)  # the killed episode once, as the process pool played it


def test_a_killed_ray_driver_resumes_to_the_episodes_the_process_pool_records(local_ray, env_kwargs,
                                                                              local_collection, tmp_path):
    output = tmp_path / "episodes"
    tests = Path(__file__).parent
    script = (f"import sys; sys.path.insert(0, {str(tests)!r}); from conftest import MICRO, TINY_DATA; "
              "from agents.backends import Backend; from agents.collect import collect; "
              f"collect({{'preset': MICRO, 'data_config': TINY_DATA, 'cache_dir': {env_kwargs['cache_dir']!r}, "
              f"'num_steps': 2}}, {KILLED_TARGET}, output={str(output)!r}, seed={SEED}, progress=False, "
              f"env_id={V0!r}, backend=Backend('ray', workers=2))")
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not _committed(output) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None and _committed(output), "no episode committed while the driver ran"
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):  # the driver's own local Ray, which it cannot stop
            os.killpg(process.pid, signal.SIGKILL)

    survived = len(load_trajectories(output).episodes)
    assert 1 <= survived < KILLED_TARGET
    summary = collect(env_kwargs, KILLED_TARGET, output=output, seed=SEED, resume=True, progress=False, env_id=V0,
                      backend=Backend("ray", workers=2))
    assert summary.new_episodes == KILLED_TARGET - survived
    _assert_same_episodes(output, local_collection)


def _committed(path: Path) -> bool:
    return (path / "data" / "metadata.json").exists() and bool(episode_metadata(path))


@pytest.mark.parametrize("backend", [Backend("process", workers=2), Backend("ray", workers=2)], ids=["process", "ray"])
def test_a_comparison_on_a_backend_records_what_one_env_plays(local_ray, env_kwargs, tmp_path, backend):
    agents = {"uniform": Uniform(), "odm": OnlineDataMixing()}
    here = evaluate_agents(agents, [0], env_kwargs, tmp_path / "here", progress=False, env_id=V0)
    there = evaluate_agents(agents, [0], env_kwargs, tmp_path / backend.name, progress=False, env_id=V0,
                            backend=backend)
    assert there.new_episodes == 2
    pd.testing.assert_frame_equal(there.episodes, here.episodes)


def test_the_search_and_regmix_learn_on_ray_what_they_learn_here(local_ray, env_kwargs):
    env = gym.make(V0, **env_kwargs)
    try:
        here = MixtureSearch(batch=2).learn(env, budget=3, seed=3, progress=False)
        there = MixtureSearch(batch=2).learn(env, budget=3, seed=3, progress=False, backend=Backend("ray", 2))
        pd.testing.assert_frame_equal(there.table, here.table)
        assert there.table["batch"].eq(2).all()

        regmix_here = RegMix().learn(env, num_runs=2, seed=3, max_steps=1, progress=False)
        regmix_there = RegMix().learn(env, num_runs=2, seed=3, max_steps=1, progress=False,
                                      backend=Backend("ray", 2))
        np.testing.assert_array_equal(regmix_there.best_mixture, regmix_here.best_mixture)
    finally:
        env.close()


def test_tasks_whose_futures_are_cancelled_are_not_waited_for(local_ray):
    start = time.monotonic()
    with Backend("ray", workers=2).executor() as pool:
        # subprocess.run: a Python function the workers can import (this module they cannot)
        done = pool.submit(subprocess.run, ["sleep", "0.1"])
        cancelled = [pool.submit(subprocess.run, ["sleep", "120"]) for _ in range(3)]  # as a failed collector's
        assert done.result(timeout=60).returncode == 0
        assert all(future.cancel() for future in cancelled)
    assert time.monotonic() - start < 60, "the executor waited for the cancelled tasks"


def test_backend_settings_that_cannot_work_name_the_fix(monkeypatch):
    with pytest.raises(ValueError, match="--backend ray"):
        Backend("process", workers=2, address="auto")
    with pytest.raises(ValueError, match="Unknown backend 'slurm'"):
        Backend("slurm")
    with pytest.raises(ValueError, match="workers >= 1"):
        Backend("ray", workers=0)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        MixtureSearch(batch=0)
    monkeypatch.setitem(sys.modules, "ray", None)  # as where the extra is not installed: import ray fails
    with pytest.raises(ImportError, match=r'pip install -e "\.\[ray\]"'):
        Backend("ray").executor()
