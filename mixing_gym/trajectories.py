"""Recorded data mixing trajectories: the episodes offline agents and the surrogate env learn from.

A :class:`TrajectoryDataset` holds finished ``DataMixing-v1`` (or v0) episodes together with what is needed to
read them without the env: the env id and arguments and the env's :class:`~mixing_gym.layout.MixingLayout`
(domains, benchmarks and what each measures, base scores, the MDP settings). Consumers (the surrogate, the
offline agent) use
these dataclasses; the functions below store them.

On disk a dataset is a `Minari <https://minari.farama.org>`_ dataset in Minari's ``arrow`` format::

    PATH/
      data/                     Minari's data folder: minari.MinariDataset(PATH / "data")
        metadata.json           Minari's dataset metadata, plus "mixing_gym": env id and arguments,
                                the env's layout, collection settings
        <id>/part-0.arrow       one episode (Arrow IPC file): observations, actions, rewards, terminations,
                                truncations; Hugging Face ``datasets`` loads it (``to_hf_dataset``)
        <id>/metadata.json      the episode's seed, policy and collection index

Collect into ``$MINARI_DATASETS_PATH/<namespace>/<name>-v<N>`` and ``minari.load_dataset`` finds it
by id. Appending is crash-safe (see :class:`TrajectoryWriter`): a process killed at any moment leaves
a readable dataset holding every episode committed before.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout

from mixing_gym.env_config import env_kwargs_to_json
from mixing_gym.layout import MixingLayout
from mixing_gym.normalized_scores import reference_scores
from mixing_gym.reference import REFERENCE_DATASETS
from mixing_gym.storage import atomic_write_json

if TYPE_CHECKING:
    from typing import Self

    import datasets
    import gymnasium as gym
    import minari

#: Minari's data folder inside a dataset folder (the layout ``minari.load_dataset`` expects).
DATA_DIR = "data"
#: Key of mixing-gym's block in Minari's ``metadata.json``.
METADATA_KEY = "mixing_gym"
#: Version of that block; bumped when its meaning changes.
FORMAT_VERSION = 2
#: Scratch folder where an episode is written before it is moved into place (hidden from Minari).
STAGING_DIR = ".staging"
MINARI_FORMAT = "arrow"
DEFAULT_NAMESPACE = "mixing-gym"
VERSIONED_NAME = re.compile(r"^[-_\w]+-v\d+$")


class TrajectoryDatasetError(ValueError):
    """A trajectory dataset is missing, corrupt or not what the caller expects; the message names the fix."""


@dataclass
class Trajectory:
    """One finished episode.

    Args:
        observations: ``(T + 1, D)`` float32, the reset observation then one per step.
        actions: ``(T, K)`` float32, the actions as passed to ``env.step``.
        rewards: ``(T,)`` float64.
        terminations: ``(T,)`` bool (the last is True for a finished episode).
        truncations: ``(T,)`` bool.
        seed: the ``env.reset(seed=...)`` of the episode.
        policy: how the actions were generated (for example ``"dirichlet(alpha=0.3)"``).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    seed: int
    policy: str = ""

    @property
    def num_steps(self) -> int:
        return len(self.actions)

    @property
    def mixtures(self) -> np.ndarray:
        """``(T, K)``: the mixture applied at each step (the ``weight/*`` entries of the next observation)."""
        return self.observations[1:, : self.actions.shape[1]]


@dataclass
class TrajectoryDataset:
    """Episodes of one env configuration.

    Args:
        env_id: the registered id the episodes ran on (``"DataMixing-v1"``).
        env_kwargs: the JSON-serialisable ``gym.make`` keyword arguments.
        layout: the env's :class:`~mixing_gym.layout.MixingLayout` (domains, benchmarks, base scores, MDP).
        episodes: the recorded episodes.
    """

    env_id: str
    env_kwargs: dict[str, Any]
    layout: MixingLayout
    episodes: list[Trajectory] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: gym.Env, env_kwargs: Mapping[str, Any]) -> TrajectoryDataset:
        """An empty dataset of ``env`` (a mixing env made with ``env_kwargs``)."""
        return cls(env.spec.id if env.spec is not None else "DataMixing-v1", env_kwargs_to_json(env_kwargs),
                   MixingLayout.of(env))

    @property
    def total_steps(self) -> int:
        return sum(episode.num_steps for episode in self.episodes)

    def make_kwargs(self) -> dict[str, Any]:
        """``gym.make(dataset.env_id, **dataset.make_kwargs())`` rebuilds the env the episodes ran on (the env
        takes presets, data configs and standard tasks as the dicts they are recorded as)."""
        return dict(self.env_kwargs)

    def header_differences(self, other: TrajectoryDataset) -> list[str]:
        """How ``other``'s env (its id and layout) differs from this one's."""
        differences = [] if self.env_id == other.env_id else [f"env_id: {self.env_id!r} here, {other.env_id!r} there"]
        return differences + self.layout.differences(other.layout)

    def _metadata(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "env_id": self.env_id, "env_kwargs": as_json(self.env_kwargs),
                "layout": self.layout.to_json()}

    @classmethod
    def _from_metadata(cls, block: Mapping[str, Any]) -> TrajectoryDataset:
        return cls(block["env_id"], dict(block["env_kwargs"]), MixingLayout.from_json(block["layout"]))


# --------------------------------------------------------------------------------------------
# Env arguments as JSON


def as_json(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists), so that recorded and new values compare equal."""
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------------------------
# Reading


def _data_dir(path: str | os.PathLike) -> Path:
    """Minari's data folder of a dataset given by its folder or by the data folder itself."""
    path = Path(path).absolute()  # Minari's size count fails on relative folders
    return path if (path / "metadata.json").exists() and not (path / DATA_DIR).is_dir() else path / DATA_DIR


def _read_json(path: Path, dataset: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:  # ValueError: JSON that does not parse, bytes that are not UTF-8
        raise TrajectoryDatasetError(f"The trajectory dataset {dataset} is corrupt: cannot read {path} ({error}). "
                                     "Collect it again into a new folder.") from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The whole ``metadata.json`` of the dataset at ``path`` (Minari's keys and ``"mixing_gym"``)."""
    data = _data_dir(path)
    if not (data / "metadata.json").exists():
        raise TrajectoryDatasetError(f"No trajectory dataset at {path} (no {data / 'metadata.json'}); collect one with "
                                     f"`mixing-gym collect --output {path}` or pass the folder it was written to.")
    metadata = _read_json(data / "metadata.json", Path(path))
    block = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    if not isinstance(block, dict):
        raise TrajectoryDatasetError(f"{path} is a Minari dataset but not a mixing-gym trajectory dataset (its "
                                     f"metadata has no {METADATA_KEY!r} entry); collect one with `mixing-gym collect`.")
    if not isinstance(metadata.get("total_episodes"), int):
        raise TrajectoryDatasetError(f"The trajectory dataset {path} is corrupt: its metadata has no episode count. "
                                     "Collect it again into a new folder.")
    if block.get("format") != FORMAT_VERSION:
        raise TrajectoryDatasetError(f"{path} has trajectory format {block.get('format')!r}; this mixing-gym reads "
                                     f"format {FORMAT_VERSION}. Collect the trajectories again with this version.")
    return metadata


def _episode_order(metadatas: list[dict[str, Any]]) -> list[int]:
    """Storage positions sorted by collection index, so that the order does not depend on which worker finished
    first."""
    if all("index" in meta for meta in metadatas):
        return sorted(range(len(metadatas)), key=lambda i: metadatas[i]["index"])
    return list(range(len(metadatas)))


def _committed(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The dataset metadata and the metadata of each committed episode, read from one ``total_episodes``."""
    metadata = read_metadata(path)
    data = _data_dir(path)
    episodes = [_read_json(data / str(i) / "metadata.json", Path(path)) for i in range(int(metadata["total_episodes"]))]
    return metadata, episodes


def episode_metadata(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Each committed episode's metadata (``id``, ``seed``, ``total_steps``, ``policy``, ``index``, ...), in storage
    order."""
    return _committed(path)[1]


def load_trajectories(path: str | os.PathLike) -> TrajectoryDataset:
    """The dataset at ``path`` (its folder, or its Minari data folder) with every committed episode.

    Episodes come in the order of their collection index (``episode_metadata(path)[i]["index"]``), so a
    collection run in parallel, or interrupted and resumed, loads the same as a sequential one.
    """
    from minari.dataset.minari_storage import MinariStorage

    metadata, metas = _committed(path)
    try:
        dataset = TrajectoryDataset._from_metadata(metadata[METADATA_KEY])
    except (KeyError, TypeError, ValueError) as error:
        raise TrajectoryDatasetError(f"The trajectory dataset {path} is corrupt: its metadata lacks or mangles "
                                     f"{error}. Collect it again into a new folder.") from None
    if not metas:
        return dataset
    try:
        stored = list(MinariStorage.read(_data_dir(path)).get_episodes(range(len(metas))))
    except (OSError, ValueError, KeyError) as error:  # pyarrow's errors for missing or truncated files
        raise TrajectoryDatasetError(f"The trajectory dataset {path} is corrupt: cannot read its episodes "
                                     f"({type(error).__name__}: {error}). Collect it again into a new folder."
                                     ) from None
    if len(stored) != len(metas):
        raise TrajectoryDatasetError(f"The trajectory dataset {path} is corrupt: {len(metas)} episodes are committed "
                                     f"but {len(stored)} can be read. Collect it again into a new folder.")
    try:
        for position in _episode_order(metas):
            episode, meta = stored[position], metas[position]
            dataset.episodes.append(Trajectory(
                np.asarray(episode["observations"], dtype=np.float32), np.asarray(episode["actions"], dtype=np.float32),
                np.asarray(episode["rewards"], dtype=np.float64), np.asarray(episode["terminations"], dtype=bool),
                np.asarray(episode["truncations"], dtype=bool), int(meta["seed"]), str(meta.get("policy", ""))))
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise TrajectoryDatasetError(f"The trajectory dataset {path} is corrupt: an episode's metadata lacks or "
                                     f"mangles {error}. Collect it again into a new folder.") from None
    return dataset


def as_dataset(dataset: TrajectoryDataset | str | os.PathLike) -> TrajectoryDataset:
    """``dataset`` itself, or the dataset recorded at that path (:func:`load_trajectories`)."""
    return dataset if isinstance(dataset, TrajectoryDataset) else load_trajectories(dataset)


def minari_dataset(path: str | os.PathLike) -> minari.MinariDataset:
    """The dataset at ``path`` as a ``minari.MinariDataset`` (episodes in storage order)."""
    import minari

    read_metadata(path)  # a clear error for a missing or foreign dataset
    return minari.MinariDataset(_data_dir(path))


def install_reference_dataset(dataset_id: str = "mixing-gym/v1-small-v0", force: bool = False) -> Path:
    """Copy a reference dataset shipped in the package into Minari's datasets folder (``$MINARI_DATASETS_PATH``,
    else ``~/.minari/datasets``) as ``dataset_id``, so that ``minari.load_dataset(dataset_id)`` reads it offline.

    Its metadata gets the reference scores of :mod:`mixing_gym.normalized_scores`: ``ref_min_score`` the
    uniform mixture's mean return, ``ref_max_score`` the search's best (returns under the balanced reward are
    final balanced scores), so ``minari.get_normalized_score`` gives :func:`mixing_gym.get_normalized_score`
    over 100. An installed copy is kept unless ``force``; a new one is staged beside it and moved into place,
    so an interrupted install leaves no half dataset under the id.

    Args:
        dataset_id: one of :data:`mixing_gym.reference.REFERENCE_DATASETS`.
        force: install again over an installed copy.

    Returns the installed dataset folder (its ``data/`` is what ``minari.MinariDataset`` opens).
    """
    from minari.storage.datasets_root_dir import get_dataset_path

    if dataset_id not in REFERENCE_DATASETS:
        raise KeyError(f"No reference dataset {dataset_id!r}; the package ships {sorted(REFERENCE_DATASETS)}.")
    reference = REFERENCE_DATASETS[dataset_id]
    target = get_dataset_path(dataset_id)
    if (target / "data" / "metadata.json").exists() and not force:
        return target
    scores = reference_scores(reference.env_id, reference.preset, reference.target_field)
    staging = target.with_name(f".{target.name}.installing")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(reference.folder, staging)
    metadata = read_metadata(staging)
    metadata.update(dataset_id=dataset_id, ref_min_score=scores.uniform, ref_max_score=scores.best)
    atomic_write_json(_data_dir(staging) / "metadata.json", metadata)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def to_hf_dataset(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> datasets.Dataset:
    """The committed episodes as a Hugging Face ``datasets.Dataset`` read from their arrow files.

    One row per observation, in storage order: ``observations``, the ``actions`` taken from it, the
    ``rewards``, ``terminations`` and ``truncations`` that followed, plus ``episode_id`` (Minari's id)
    and ``step``. The last row of an episode holds its final observation, with the zero action and
    reward Minari pads it with. ``cache_dir`` is passed to ``datasets.load_dataset``.
    """
    import datasets

    _, metas = _committed(path)
    if not metas:
        raise TrajectoryDatasetError(f"The trajectory dataset {path} has no episodes yet; collect some first.")
    data = _data_dir(path)
    files = [data / str(i) / "part-0.arrow" for i in range(len(metas))]  # the one file Minari writes per episode
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise TrajectoryDatasetError(f"The trajectory dataset {path} is corrupt: {missing} are missing. Collect it "
                                     "again into a new folder.")
    table = datasets.load_dataset("arrow", data_files=[str(f) for f in files], split="train",
                                  cache_dir=None if cache_dir is None else str(cache_dir))
    lengths = [int(meta["total_steps"]) + 1 for meta in metas]
    table = table.add_column("episode_id", np.repeat(np.arange(len(lengths)), lengths).tolist())
    return table.add_column("step", np.concatenate([np.arange(n) for n in lengths]).tolist())


# --------------------------------------------------------------------------------------------
# Writing


def _default_dataset_id(path: Path) -> str:
    """``<parent>/<name>`` when the folder is named like a Minari dataset (``name-v0``), else
    ``mixing-gym/<name>-v0``."""
    path = path.resolve()
    if VERSIONED_NAME.match(path.name) and re.match(r"^[-_\w]+$", path.parent.name):
        return f"{path.parent.name}/{path.name}"
    return f"{DEFAULT_NAMESPACE}/{re.sub(r'[^-_A-Za-z0-9]+', '_', path.name) or 'trajectories'}-v0"


def _fsync_tree(folder: Path) -> None:
    for file in folder.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())


class TrajectoryWriter:
    """Appends finished episodes to the dataset at ``path``, each in one atomic commit; the only writer of it.

    An episode is written with Minari's arrow storage into ``data/.staging``, moved into place as
    ``data/<id>/`` by one ``os.rename``, and committed by atomically replacing ``data/metadata.json``
    with ``total_episodes`` raised by one. Readers (Minari's and :func:`load_trajectories`) read
    episodes ``0 .. total_episodes - 1`` only, so a process killed at any moment leaves a readable
    dataset holding every committed episode. Opening a writer discards what a killed writer left
    uncommitted (the staging folder and episode folders past ``total_episodes``). A lock file keeps a
    second writer out.

    Args:
        path: the dataset folder (created on :meth:`create`).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).absolute()  # Minari's size count fails on relative folders
        self.data = self.path / DATA_DIR
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / ".writer.lock"))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise TrajectoryDatasetError(f"Another process is writing to {self.path}; wait for it to finish or "
                                         "write to another folder.") from None
        self.metadata: dict[str, Any] | None = None
        self.header: TrajectoryDataset | None = None
        try:
            if (self.data / "metadata.json").exists():
                self.metadata = read_metadata(self.path)
                self.header = TrajectoryDataset._from_metadata(self.metadata[METADATA_KEY])
            self._discard_uncommitted()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._lock.release()

    @property
    def num_episodes(self) -> int:
        return int(self.metadata["total_episodes"]) if self.metadata else 0

    @property
    def extra(self) -> dict[str, Any]:
        """The ``extra`` metadata given to :meth:`create` (collection settings)."""
        return dict(self.metadata[METADATA_KEY].get("extra", {})) if self.metadata else {}

    def _discard_uncommitted(self) -> None:
        if not self.data.is_dir():
            return
        shutil.rmtree(self.data / STAGING_DIR, ignore_errors=True)
        for child in self.data.iterdir():
            if child.is_dir() and child.name.isdigit() and int(child.name) >= self.num_episodes:
                shutil.rmtree(child)

    def _new_staging(self):
        from minari.dataset.minari_storage import MinariStorage

        shutil.rmtree(self.data / STAGING_DIR, ignore_errors=True)
        layout = self.header.layout
        return MinariStorage.new(self.data / STAGING_DIR, layout.observation_space, layout.action_space,
                                 data_format=MINARI_FORMAT)

    def create(self, header: TrajectoryDataset, dataset_id: str | None = None,
               extra: Mapping[str, Any] | None = None) -> None:
        """Create the dataset (its episodes are not written: :meth:`append` them).

        Args:
            header: the env configuration (``header.episodes`` is ignored).
            dataset_id: Minari's id (default: from the folder's name, see :func:`_default_dataset_id`).
            extra: JSON settings recorded in the metadata (``writer.extra`` reads them back).
        """
        import gymnasium as gym
        import minari

        if self.metadata is not None:
            raise TrajectoryDatasetError(f"A trajectory dataset already exists at {self.path}; append to it or "
                                         "write to another folder.")
        self.header = dataclasses.replace(header, episodes=[])
        self.data.mkdir(exist_ok=True)
        staging = self._new_staging()
        metadata = json.loads((staging.data_path / "metadata.json").read_text())
        env_spec = dataclasses.replace(gym.spec(header.env_id), kwargs=as_json(header.env_kwargs))
        metadata.update({
            "dataset_id": dataset_id or _default_dataset_id(self.path),
            "minari_version": minari.__version__,
            "env_spec": env_spec.to_json(),
            "algorithm_name": "mixing-gym trajectories",
            "description": "Data mixing trajectories of mixing-gym: per step, a proxy language model trains on the "
                           "mixture an action sets and is scored on source- and target-field benchmarks.",
            "dataset_size": 0.0,
            METADATA_KEY: {**self.header._metadata(), "extra": as_json(dict(extra or {}))},
        })
        atomic_write_json(self.data / "metadata.json", metadata)  # the commit: the dataset now exists
        shutil.rmtree(staging.data_path)
        self.metadata = metadata

    def append(self, trajectory: Trajectory, metadata: Mapping[str, Any] | None = None) -> int:
        """Commit one finished episode; returns its Minari id.

        Args:
            trajectory: the episode, with the header's observation and action sizes.
            metadata: JSON values stored with the episode (for example its collection ``index``).
        """
        from minari.data_collector.episode_buffer import EpisodeBuffer

        if self.metadata is None or self.header is None:
            raise TrajectoryDatasetError(f"No trajectory dataset at {self.path} yet; call create(header) first.")
        self._check(trajectory)
        episode_id = self.num_episodes
        staging = self._new_staging()
        staging.update_episodes([EpisodeBuffer(
            id=episode_id, seed=int(trajectory.seed), observations=np.asarray(trajectory.observations, np.float32),
            actions=np.asarray(trajectory.actions, np.float32), rewards=np.asarray(trajectory.rewards, np.float64),
            terminations=np.asarray(trajectory.terminations, bool),
            truncations=np.asarray(trajectory.truncations, bool),
        )])
        staging.update_episode_metadata([{"policy": trajectory.policy, **as_json(dict(metadata or {}))}], [episode_id])
        staged = staging.data_path / str(episode_id)
        _fsync_tree(staged)
        destination = self.data / str(episode_id)
        shutil.rmtree(destination, ignore_errors=True)  # only an uncommitted leftover can be there
        os.rename(staged, destination)
        committed = {**self.metadata, "total_episodes": episode_id + 1,
                     "total_steps": int(self.metadata["total_steps"]) + trajectory.num_steps}
        committed["dataset_size"] = float(self.metadata.get("dataset_size", 0.0)) + sum(
            f.stat().st_size for f in destination.iterdir()) / 1e6  # MB, as Minari counts
        atomic_write_json(self.data / "metadata.json", committed)  # the commit
        self.metadata = committed
        shutil.rmtree(staging.data_path)
        return episode_id

    def _check(self, trajectory: Trajectory) -> None:
        steps = trajectory.num_steps
        layout = self.header.layout
        expected = {"observations": (steps + 1, len(layout.observation_names)), "actions": (steps, layout.num_domains),
                    "rewards": (steps,), "terminations": (steps,), "truncations": (steps,)}
        wrong = {name: np.shape(getattr(trajectory, name)) for name, shape in expected.items()
                 if np.shape(getattr(trajectory, name)) != shape}
        if wrong or steps == 0:
            raise TrajectoryDatasetError(f"The episode does not fit the dataset at {self.path}: expected shapes "
                                         f"{expected} with T >= 1 steps, got {wrong or 'T = 0'}.")


def save_trajectories(dataset: TrajectoryDataset, path: str | os.PathLike, dataset_id: str | None = None,
                      extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``dataset`` as a new dataset folder at ``path`` (an existing dataset there is an error)."""
    with TrajectoryWriter(path) as writer:
        writer.create(dataset, dataset_id, extra)
        for episode in dataset.episodes:
            writer.append(episode)
    return Path(path)
