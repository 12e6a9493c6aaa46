"""Maintenance of recorded layouts: bring a trajectory dataset or a surrogate recorded by an earlier version of the
layout up to today's (``MixingLayout.from_json`` reads only today's), from the recorded env's prepared data."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mixing_gym.descriptors import with_base_loss
from mixing_gym.engine import data_config_for
from mixing_gym.storage import atomic_write_json


def add_descriptors(folder: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                     progress: bool = True) -> Path:
    """Add domain descriptors to the layout a trajectory dataset or a surrogate recorded before they existed (a
    maintenance step: ``MixingLayout.from_json`` requires them); returns the file it rewrote.

    The descriptors are those the recorded env's layout has today: computed from its prepared data (the recorded
    ``env_id`` and ``env_kwargs`` name it; it is prepared here if missing, data only: no model is trained) with
    each domain's base bits per byte taken from the recorded base scores. The recording's other entries stay as
    they were; descriptors it already holds are replaced.

    Args:
        folder: a trajectory dataset folder (holding ``data/metadata.json``) or a surrogate folder (holding
            ``surrogate.json``).
        cache_dir: the cache root of the prepared data (default: the recorded env's, else ``$MIXING_GYM_CACHE``).
        progress: show what preparing the data does, if it has to.
    """
    from mixing_gym.env_config import env_config
    from mixing_gym.envs import target_field_space_of
    from mixing_gym.layout import BenchmarkSpec, MixingLayout
    from mixing_gym.models import get_preset
    from mixing_gym.prepare import prepare_data
    from mixing_gym.surrogate import METADATA_FILE
    from mixing_gym.trajectories import DATA_DIR, METADATA_KEY

    folder = Path(folder)
    surrogate, dataset = folder / METADATA_FILE, folder / DATA_DIR / "metadata.json"
    if not surrogate.exists() and not dataset.exists():
        raise FileNotFoundError(f"{folder} is neither a surrogate folder (no {METADATA_FILE}) nor a trajectory "
                                f"dataset folder (no {DATA_DIR}/metadata.json).")
    path = surrogate if surrogate.exists() else dataset
    document = json.loads(path.read_text())
    # A surrogate records the env at the top of its file, a dataset in its block of Minari's metadata.
    block = document if path == surrogate else document[METADATA_KEY]
    config = env_config(block["env_id"], block["env_kwargs"])
    space = config.space if config.space is not None else target_field_space_of(block["env_id"], config.target_field)
    data = prepare_data(space, data_config_for(get_preset(config.preset), config.data_config),
                        cache_dir if cache_dir is not None else config.cache_dir, progress=progress)
    layout = block["layout"]
    if list(layout["domain_names"]) != data.space.names:
        raise ValueError(f"{folder} records domains {layout['domain_names']}; its env's data has {data.space.names}.")
    layout["domain_descriptors"] = with_base_loss(data.descriptors, [BenchmarkSpec(**b) for b in layout["benchmarks"]],
                                                  layout["base_scores"])
    MixingLayout.from_json(layout)  # the recording reads again
    atomic_write_json(path, document)
    return path
