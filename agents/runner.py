"""The one episode runner: play jobs here or on a backend, commit each finished episode to a store, resume from it.

Every loop that plays episodes goes through it: the comparison harness (:func:`~agents.harness.evaluate_agents`),
RegMix's proxy runs, the search's trials and the trajectory collector (:func:`~agents.collect.collect`).

A job (:class:`EpisodeJob`) is one episode: a key naming it, an agent, an env seed, optionally a step limit and JSON
metadata. :func:`run_episodes` plays a list of jobs on the env ``gym.make(env_id, **env_kwargs)``, either one after
another in one env of this process, or as parallel tasks on a :class:`~agents.backends.Backend`, one task per
episode (:func:`play_job`, which returns the whole :class:`~agents.base.PlayedEpisode`, so that a store keeps what
it needs of it: its record, or its trajectory). This process alone writes what the tasks return. A caller that
decides its next jobs from the last ones' results (the search) keeps one :class:`EpisodeRunner` open instead, so
that the workers and their envs serve every batch.

The store protocol (:class:`Store`), two methods:

- ``done(jobs, env_key) -> set[str]``: the keys of ``jobs`` the store already holds; those are not played again.
  ``env_key`` is :func:`~mixing_gym.env_config.episode_cache_key` of the env; a store raises where a held episode
  was played on another env configuration, or differs from its job (seed, step limit, metadata).
- ``commit(job, env_key, episode)``: record one finished episode atomically, so that a process killed at any
  moment leaves every earlier commit whole.

:class:`EpisodeStore` is the store of the harness, RegMix and the search: a folder of ``<key>.json`` files, each
holding the job's key, seed, step limit and metadata, the env key and the episode's
:meth:`~agents.base.PlayedEpisode.record` (or no folder: kept in memory). The collector's store is its Minari
dataset (:class:`~mixing_gym.trajectories.TrajectoryWriter`, adapted in :mod:`agents.collect`).

Kill-safety: an episode is committed as soon as it finishes, so a kill loses only the episodes in flight and a rerun
plays only the missing ones. On an exception (a job that raises, Ctrl-C) the jobs not yet started are cancelled, the
error is raised, and every episode committed before it stays.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from agents.backends import Backend
from agents.base import Agent, PlayedEpisode, play_episode
from mixing_gym import REAL_ENV_IDS
from mixing_gym.env_config import episode_cache_key
from mixing_gym.storage import atomic_write_json, fingerprint
from mixing_gym.trajectories import as_json

#: What a job key may hold: it names a file.
JOB_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to play.

    The agent travels to a backend's worker as a copy: state it carries from one episode to the next (a
    :class:`~agents.baselines.RandomAgent`'s generator) stays there.

    Args:
        key: names the episode in its store (letters, digits, ``_.-``; a file name).
        agent: plays the episode.
        seed: the ``env.reset(seed=...)`` of the episode.
        max_steps: stop the episode after this many steps (``None``: play it to its end).
        metadata: JSON values recorded with the episode (what the caller needs to read it back).
    """

    key: str
    agent: Agent
    seed: int
    max_steps: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not JOB_KEY.match(self.key):
            raise ValueError(f"Job key {self.key!r} cannot name a file; use letters, digits, '_', '.' and '-'.")

    def identity(self) -> dict[str, Any]:
        """What a store checks a held episode against: the seed, the step limit and the metadata, as JSON."""
        return {"seed": int(self.seed), "max_steps": self.max_steps, "metadata": as_json(dict(self.metadata))}


class Store(Protocol):
    """Where a runner looks up finished episodes and commits new ones (see the module docstring)."""

    def done(self, jobs: Sequence[EpisodeJob], env_key: str) -> set[str]:
        """The keys of ``jobs`` this store holds (played on the env ``env_key``)."""
        ...

    def commit(self, job: EpisodeJob, env_key: str, episode: PlayedEpisode) -> None:
        """Record ``job``'s finished ``episode`` atomically."""
        ...


def differences(recorded: Any, requested: Any, where: str = "") -> list[str]:
    """Paths and values where two JSON values differ, e.g. ``env_kwargs.preset.num_steps: 2 recorded, 3 now``.

    Args:
        recorded: the value a store holds.
        requested: the value asked for now.
        where: the path of these values (for the recursion).
    """
    if isinstance(recorded, dict) and isinstance(requested, dict):
        return [line for key in sorted(set(recorded) | set(requested), key=str)
                for line in differences(recorded.get(key), requested.get(key), f"{where}.{key}" if where else str(key))]
    return [] if recorded == requested else [f"{where}: {recorded!r} recorded, {requested!r} now"]


class EpisodeStore:
    """The episodes of jobs by key: one JSON file per job in ``folder`` (or in memory only).

    A file ``<key>.json`` holds ``key``, ``seed``, ``max_steps``, ``metadata``, ``env`` (the env's
    :func:`~mixing_gym.env_config.episode_cache_key`) and ``episode`` (:meth:`~agents.base.PlayedEpisode.record`),
    written atomically.

    Args:
        folder: where the files go (created at the first commit); ``None``: keep the episodes in memory only.
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = None if folder is None else Path(folder)
        self._entries: dict[str, dict[str, Any]] = {}

    def _path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.json"

    @property
    def _name(self) -> str:
        return str(self.folder) if self.folder is not None else "This in-memory store"

    def load(self, key: str, env_key: str) -> dict[str, Any] | None:
        """The stored entry of the job ``key`` (the file's fields), or ``None`` where there is none.

        Raises:
            ValueError: the episode was played on another env configuration (the message names the folder).
        """
        path = self._path(key)
        if key not in self._entries and path is not None and path.exists():
            self._entries[key] = json.loads(path.read_text())
        entry = self._entries.get(key)
        if entry is not None and entry["env"] != env_key:
            raise ValueError(f"{self._name} holds episodes played on another env configuration "
                             f"({key}.json); record these ones into another folder, or delete that one to start over.")
        return entry

    def done(self, jobs: Sequence[EpisodeJob], env_key: str) -> set[str]:
        """The keys of ``jobs`` stored here (see :class:`Store`).

        Raises:
            ValueError: a stored episode of another env configuration, or one whose seed, step limit or metadata
                differ from its job's (the message names the differences).
        """
        found = set()
        for job in jobs:
            entry = self.load(job.key, env_key)
            if entry is None:
                continue
            changed = differences({name: entry[name] for name in ("seed", "max_steps", "metadata")}, job.identity())
            if changed:
                raise ValueError(f"{self._name} records job {job.key!r} otherwise: {'; '.join(changed)}. "
                                 "A key names one episode: give a changed job another key, or record into another "
                                 "folder.")
            found.add(job.key)
        return found

    def commit(self, job: EpisodeJob, env_key: str, episode: PlayedEpisode) -> None:
        """Store ``job``'s finished ``episode`` (its file is replaced atomically)."""
        entry = {"key": job.key, **job.identity(), "env": env_key, "episode": episode.record()}
        path = self._path(job.key)
        if path is not None:
            atomic_write_json(path, entry)
        self._entries[job.key] = as_json(entry)  # as a reader of the file gets it back

    def episodes(self, jobs: Sequence[EpisodeJob], env_key: str) -> list[dict[str, Any]]:
        """The episode records of ``jobs``, each stored here (run them first).

        Raises:
            KeyError: a job not stored here.
        """
        entries = [self.load(job.key, env_key) for job in jobs]
        missing = [job.key for job, entry in zip(jobs, entries) if entry is None]
        if missing:
            raise KeyError(f"{self._name} holds no episode of jobs {missing}; run them first.")
        return [entry["episode"] for entry in entries]


# --------------------------------------------------------------------------------------------
# The task


#: This worker process's envs by their arguments' fingerprint: made at the first task, reused by the next ones.
_WORKER_ENVS: dict[str, gym.Env] = {}


def play_job(job: EpisodeJob, env_id: str, env_kwargs: dict[str, Any]) -> PlayedEpisode:
    """Worker task: ``job``'s episode on this worker's env ``gym.make(env_id, **env_kwargs)``.

    The env is made at the worker's first task for these arguments and reused by the next ones; on a node whose
    cache is not prepared, the first env prepares it under the cache's lock, so a node prepares once.
    """
    key = fingerprint({"env_id": env_id, "env_kwargs": env_kwargs})
    if key not in _WORKER_ENVS:
        _WORKER_ENVS[key] = gym.make(env_id, **env_kwargs)
    return play_episode(job.agent, _WORKER_ENVS[key], job.seed, max_steps=job.max_steps)


def env_arguments(env: gym.Env) -> tuple[str, dict[str, Any]]:
    """The id and keyword arguments ``gym.make`` made ``env`` from, for a runner (and its workers) to name it."""
    spec = env.unwrapped.spec or env.spec
    if spec is None:
        raise ValueError("Playing episodes through the runner names the env by its gym.make arguments; pass an env "
                         "made by gym.make.")
    return spec.id, dict(spec.kwargs)


# --------------------------------------------------------------------------------------------
# The runner


class EpisodeRunner:
    """Plays jobs on one env configuration and commits each finished episode to ``store``; use it as a context
    manager, which closes the workers (or the env it made) on leaving.

    Workers and envs start at the first job that is not in the store, and serve every later :meth:`run`.

    Args:
        env_id: the env every job plays on, by its ``gym.make`` id.
        env_kwargs: its ``gym.make`` keyword arguments.
        store: where the finished episodes are looked up and committed (see :class:`Store`).
        backend: play the jobs there in parallel, one task each; default: one after another in one env here.
        env: the env to play on here, made like ``env_id`` and ``env_kwargs`` (default: one is made at the first job
            and closed on leaving). Not used with a backend.
        progress: show a progress bar over the jobs.
        total: the jobs the bar counts to (default: those of the first :meth:`run`).
        desc: the bar's label.
        unit: the bar's unit.
    """

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any], store: Store, backend: Backend | None = None,
                 env: gym.Env | None = None, progress: bool = True, total: int | None = None,
                 desc: str = "episodes", unit: str = "ep"):
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.env_key = episode_cache_key(env_id, env_kwargs)
        self.store = store
        self.backend = backend
        self._env = env
        self._made_env = False
        self._pool: Executor | None = None
        self._progress, self._total, self._desc, self._unit = progress, total, desc, unit
        #: The progress bar, from the first :meth:`run` on (its postfix names the last job committed).
        self.bar: tqdm | None = None

    def __enter__(self) -> EpisodeRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut the workers down (after the tasks in flight: cancelled ones are not waited for) and close the env
        this runner made."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._made_env:
            self._env.close()
            self._env, self._made_env = None, False
        if self.bar is not None:
            self.bar.close()

    @property
    def workers(self) -> int:
        """Episodes that play at once: 1 here, the backend's workers (a Ray cluster's CPUs) there."""
        if self.backend is None:
            return 1
        return getattr(self._pool, "workers", self.backend.workers)

    def run(self, jobs: Sequence[EpisodeJob]) -> int:
        """Play the jobs that are not in the store, committing each episode as it finishes; returns how many played.

        Raises:
            ValueError: two jobs with one key, or what the store raises on a held episode that does not match.
        """
        keys = [job.key for job in jobs]
        if len(set(keys)) < len(keys):
            raise ValueError(f"Job keys must be unique; repeated: {sorted({k for k in keys if keys.count(k) > 1})}.")
        done = self.store.done(jobs, self.env_key)
        pending = [job for job in jobs if job.key not in done]
        if self.bar is None:  # the jobs found done are where the bar starts, not part of its rate
            self.bar = tqdm(total=len(jobs) if self._total is None else self._total, initial=len(done),
                            desc=self._desc, unit=self._unit, disable=not self._progress)
        else:
            self.bar.update(len(done))
        # closing: on an error, a backend's jobs not yet started are cancelled before the workers shut down
        with closing(self._play_here(pending) if self.backend is None else self._play_on(pending)) as played:
            for job, episode in played:
                self.store.commit(job, self.env_key, episode)
                self.bar.set_postfix_str(job.key, refresh=False)
                self.bar.update()
        return len(pending)

    def _play_here(self, jobs: list[EpisodeJob]) -> Iterator[tuple[EpisodeJob, PlayedEpisode]]:
        if jobs and self._env is None:
            self._env, self._made_env = gym.make(self.env_id, **self.env_kwargs), True
        for job in jobs:
            yield job, play_episode(job.agent, self._env, job.seed, max_steps=job.max_steps)

    def _play_on(self, jobs: list[EpisodeJob]) -> Iterator[tuple[EpisodeJob, PlayedEpisode]]:
        """The jobs' episodes as the backend's tasks finish them, in any order."""
        if not jobs:
            return
        if self._pool is None:
            if self.env_id.rpartition(":")[2] in REAL_ENV_IDS:
                from mixing_gym.envs import prepare_env

                # Prepared once here, so that the workers find a complete cache instead of queueing on its lock.
                prepare_env(self.env_id, self.env_kwargs, progress=self._progress)
            self._pool = self.backend.executor()
        # closures, lambdas and classes of __main__ reach the workers too: each agent travels by cloudpickle
        running: dict[Future, EpisodeJob] = {
            self._pool.submit(play_job, replace(job, agent=_Travelling(job.agent)), self.env_id, self.env_kwargs): job
            for job in jobs}
        try:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield running.pop(future), future.result()
        except BaseException:  # an error, or GeneratorExit from run() when a commit failed
            # Cancelled tasks are not played out (RayExecutor.shutdown cancels them); the finished ones are committed.
            for future in running:
                future.cancel()
            raise


def run_episodes(jobs: Sequence[EpisodeJob], env_id: str, env_kwargs: Mapping[str, Any], store: Store,
                 backend: Backend | None = None, env: gym.Env | None = None, progress: bool = True,
                 desc: str = "episodes", unit: str = "ep") -> int:
    """Play the ``jobs`` the store does not hold and commit each episode as it finishes; returns how many played.

    Args:
        jobs: the episodes (unique keys).
        env_id: the env every job plays on, by its ``gym.make`` id.
        env_kwargs: its ``gym.make`` keyword arguments.
        store: where the finished episodes are looked up and committed (an :class:`EpisodeStore`; see :class:`Store`).
        backend: play the jobs there in parallel, one task each; default: one after another in one env here.
        env: the env to play on here, made like ``env_id`` and ``env_kwargs`` (default: one is made and closed).
        progress: show a progress bar over the jobs.
        desc: the bar's label.
        unit: the bar's unit.
    """
    with EpisodeRunner(env_id, env_kwargs, store, backend, env, progress, len(jobs), desc, unit) as runner:
        return runner.run(jobs)


class _Travelling(Agent):
    """An agent that travels to a worker process by ``cloudpickle`` (closures, lambdas, classes of ``__main__``),
    arriving there as itself; here it plays as the agent it wraps."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def reset(self, layout: Any) -> None:
        self.agent.reset(layout)

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self.agent.act(observation, info)

    def __reduce__(self):
        import cloudpickle

        return _unpickle, (cloudpickle.dumps(self.agent),)


def _unpickle(data: bytes) -> Agent:
    import cloudpickle

    return cloudpickle.loads(data)
