"""The reference trajectories shipped in the package: one command makes them a Minari dataset, offline, whose
reference scores put returns on ``get_normalized_score``'s scale."""

from __future__ import annotations

import minari
import numpy as np
import pytest

from agents.cli import main
from mixing_gym import get_normalized_score
from mixing_gym.reference import REFERENCE_CODE_TRAJECTORIES, REFERENCE_TRAJECTORIES
from mixing_gym.trajectories import load_trajectories

DATASET_ID = "mixing-gym/v1-small-v0"


def test_install_dataset_makes_the_reference_trajectories_a_minari_dataset_with_reference_scores(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert main(["install-dataset"]) == 0
    assert "128 episodes" in capsys.readouterr().out

    dataset = minari.load_dataset(DATASET_ID)  # offline: from the folder the command wrote
    assert dataset.total_episodes == 128
    shipped = load_trajectories(REFERENCE_TRAJECTORIES)
    returns = np.array([episode.rewards.sum() for episode in dataset.iterate_episodes()])
    assert np.allclose(sorted(returns), sorted(episode.rewards.sum() for episode in shipped.episodes))
    # Minari's scale is mixing-gym's over 100: 0 at uniform's mean, 1 at the search's best
    np.testing.assert_allclose(minari.get_normalized_score(dataset, returns),
                               get_normalized_score("DataMixing-v1", returns) / 100)

    metadata = tmp_path / DATASET_ID / "data" / "metadata.json"
    installed = metadata.stat().st_mtime_ns
    assert main(["install-dataset"]) == 0 and metadata.stat().st_mtime_ns == installed  # kept
    assert main(["install-dataset", "--force"]) == 0 and metadata.stat().st_mtime_ns != installed
    assert not list(tmp_path.glob("mixing-gym/.*installing"))  # no staging folder left behind


def test_the_code_fields_trajectories_install_with_the_code_fields_reference_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert main(["install-dataset", "--dataset-id", "mixing-gym/v1-code-small-v0"]) == 0
    dataset = minari.load_dataset("mixing-gym/v1-code-small-v0")
    shipped = load_trajectories(REFERENCE_CODE_TRAJECTORIES)
    assert dataset.total_episodes == len(shipped.episodes) == 128
    assert shipped.env_kwargs["space"] == "code-v1"
    returns = np.array([episode.rewards.sum() for episode in dataset.iterate_episodes()])
    np.testing.assert_allclose(minari.get_normalized_score(dataset, returns),
                               get_normalized_score("DataMixing-v1", returns, target_field="code") / 100)
    assert not np.allclose(get_normalized_score("DataMixing-v1", returns, target_field="code"),
                           get_normalized_score("DataMixing-v1", returns))  # each field on its own scale


def test_an_unknown_reference_dataset_names_the_ones_shipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    assert main(["install-dataset", "--dataset-id", "mixing-gym/v9-huge-v0"]) == 2
    assert DATASET_ID in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        minari.load_dataset("mixing-gym/v9-huge-v0")
