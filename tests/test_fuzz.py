"""Property-based tests (Hypothesis) of the inputs users hand the package: actions, recorded layouts, domain space
configs and trajectory datasets. Each input either works or raises the project's own error, which says what to do.

The number of cases each property ran is in pytest's output with ``--hypothesis-show-statistics``.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, floating_dtypes, integer_dtypes

from mixing_gym.domains import DomainSpace
from mixing_gym.layout import MixingLayout
from mixing_gym.mdp import action_to_weights
from mixing_gym.reference import REFERENCE_TRAJECTORIES, reference_surrogate_path
from mixing_gym.surrogate import SurrogateModel
from mixing_gym.trajectories import TrajectoryDatasetError, load_trajectories

#: Derandomised: CI runs the same cases every time (a failure reproduces); raise max_examples locally to search wider.
CASES = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])
LAYOUT = SurrogateModel.load(reference_surrogate_path()).layout
K = LAYOUT.num_domains

actions = st.one_of(
    arrays(st.one_of(floating_dtypes(), integer_dtypes()), st.one_of(st.just((K,)), array_shapes(max_dims=2)),
           elements=None),
    arrays(np.float32, (K,), elements=st.floats(-10, 10, width=32)),
)


@CASES
@given(action=actions, mode=st.sampled_from(["logits", "weights"]))
def test_an_action_maps_to_a_mixture_or_says_what_to_pass(action, mode):
    try:
        weights = action_to_weights(action, (K,), mode, 0.25)
    except ValueError as error:
        assert any(fix in str(error) for fix in ("pass an array of shape", "pass real numbers", "pass finite",
                                                 "pass values >= 0", "give at least one domain")), str(error)
        assert len(str(error)) < 400
        return
    assert weights.shape == (K,) and np.all(weights >= 0) and weights.sum() == pytest.approx(1.0)


@CASES
@given(action=arrays(np.float32, (K,), elements=st.floats(-1, 1, width=32)))
def test_logits_round_trip_through_weights(action):
    weights = LAYOUT.action_to_weights(action)
    assert np.allclose(LAYOUT.action_to_weights(LAYOUT.weights_to_action(weights)), weights, atol=1e-5)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3), max_leaves=6)


@CASES
@given(key=st.sampled_from(sorted(LAYOUT.to_json())), value=json_values, drop=st.booleans())
def test_a_mangled_layout_is_named_or_read(key, value, drop):
    block = LAYOUT.to_json()
    if drop:
        del block[key]
    else:
        block[key] = value
    try:
        layout = MixingLayout.from_json(json.loads(json.dumps(block)))
    except ValueError as error:
        assert "record it again" in str(error) or "MixingLayout" in str(error), str(error)
        return
    assert MixingLayout.from_json(layout.to_json()) == layout


def test_a_layout_survives_its_json_round_trip():
    assert MixingLayout.from_json(json.loads(json.dumps(LAYOUT.to_json()))) == LAYOUT


space_entries = st.fixed_dictionaries({}, optional={
    "name": json_values, "target_field": json_values, "benchmarks": json_values, "eval_chars": json_values,
    "task_items": json_values, "unknown": json_values,
    "domains": st.one_of(json_values, st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(["wikipedia", "news", "math_arithmetic", "nowhere"]) | st.text(max_size=6)},
        optional={"field": st.sampled_from(["source", "target", "other"]) | json_values, "hf": json_values}),
        max_size=4)),
})


@CASES
@given(config=space_entries, as_yaml=st.booleans())
def test_a_space_config_builds_a_space_or_names_the_faulty_key(config, as_yaml, tmp_path_factory):
    source = config
    if as_yaml:
        source = tmp_path_factory.mktemp("space") / "space.yaml"
        source.write_text(yaml.safe_dump(config))
    try:
        space = DomainSpace.from_config(source)
    except (ValueError, KeyError) as error:
        assert "Domain space" in str(error) or "domain" in str(error).lower(), str(error)
        return
    assert len(space) >= 1


@CASES
@given(text=st.text(max_size=200))
def test_a_space_file_of_any_text_is_read_or_named(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.yaml"
    path.write_text(text)
    try:
        DomainSpace.from_config(path)
    except (ValueError, KeyError) as error:
        assert str(path) in str(error) or "domain" in str(error).lower(), str(error)


@pytest.fixture(scope="module")
def dataset_copy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trajectories") / "dataset"
    shutil.copytree(REFERENCE_TRAJECTORIES, folder)
    return folder


@settings(CASES, max_examples=60)
@given(data=st.data())
def test_a_damaged_trajectory_dataset_is_read_or_named(dataset_copy, data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("damaged") / "dataset"
    shutil.copytree(dataset_copy, folder)
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    target = data.draw(st.sampled_from(files), label="file")
    content = target.read_bytes()
    cut = data.draw(st.integers(0, len(content)), label="cut")
    damage = data.draw(st.sampled_from(["truncate", "flip", "delete"]), label="damage")
    if damage == "delete":
        target.unlink()
    elif damage == "truncate":
        target.write_bytes(content[:cut])
    else:
        flipped = bytearray(content)
        flipped[min(cut, len(content) - 1)] ^= 0xFF
        target.write_bytes(bytes(flipped))
    try:
        dataset = load_trajectories(folder)
    except TrajectoryDatasetError as error:
        assert "trajector" in str(error).lower(), str(error)
        return
    assert len(dataset.episodes) >= 1
