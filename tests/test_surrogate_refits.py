"""``DataMixingSurrogate-v2`` and later: the reference surrogates refit on real episodes of trained policies,
pessimistic by default with the weight their cards record, the fast penalised step, and the benchmark protocol's
versions."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import mixing_gym  # noqa: F401  (registers the envs)
from agents.benchmark import BenchmarkProtocol, make_training_env, run_benchmark
from mixing_gym.layout import MixingLayout
from mixing_gym.reference import (
    SURROGATE_VERSIONS,
    policy_episodes_folder,
    reference_card,
    reference_penalty,
    reference_surrogate,
    reference_surrogate_path,
)
from mixing_gym.surrogate import SurrogateModel
from mixing_gym.trajectories import load_trajectories

REFITS = [f"DataMixingSurrogate-v{number}" for number in SURROGATE_VERSIONS[1:]]
V2, V6 = "DataMixingSurrogate-v2", "DataMixingSurrogate-v6"


@pytest.mark.parametrize("env_id", REFITS)
@pytest.mark.parametrize("field", ["math", "code"])
def test_a_refit_is_the_same_fit_on_the_reference_and_the_rounds_of_policy_episodes_its_card_lists(env_id, field):
    card = reference_card(env_id, field)
    dataset = load_trajectories(reference_surrogate(env_id, field).trajectories)
    package = policy_episodes_folder(field).parents[2]
    rounds = [package / folder for folder in card["trajectories"]["policy_episodes"]]
    # later rounds (held out from it: the protocol's own policies) may follow in the folder, never a gap before them
    assert rounds == sorted(policy_episodes_folder(field).glob("round*"))[:len(rounds)] and len(rounds) >= 3
    for folder in rounds:
        played = load_trajectories(folder)
        assert not played.header_differences(dataset)  # the same env config as the reference trajectories
        assert all(episode.policy.endswith(f"-{folder.name}") for episode in played.episodes)
        dataset.episodes += played.episodes
    assert card["trajectories"]["episodes"] == len(dataset.episodes)
    fresh = SurrogateModel.fit(dataset, ensemble=card["model"]["ensemble"], seed=card["model"]["seed"])
    shipped = SurrogateModel.load(reference_surrogate_path(env_id, field))
    weights = np.random.default_rng(0).dirichlet(np.ones(shipped.num_domains), 16)
    state = (np.zeros((16, shipped.num_benchmarks)), weights, np.full(16, 0.25), np.zeros_like(weights), slice(None))
    # to the rounding of the ridge solves, which the BLAS's threads move: up to 6e-6 relative was seen on the bootstrap
    # members between a lone process and a pytest-xdist worker, and 2e-8 absolute on changes of a few 1e-6 (v6); other
    # data moves them by far more (below)
    np.testing.assert_allclose(shipped.member_changes(*state), fresh.member_changes(*state), rtol=1e-4, atol=1e-7)
    v1 = SurrogateModel.load(reference_surrogate_path("DataMixingSurrogate-v1", field))
    assert not np.allclose(v1.member_changes(*state), shipped.member_changes(*state))  # the new data moved it


def test_v2_applies_its_chosen_penalty_by_default():
    from gymnasium.utils.env_checker import check_env

    penalty = reference_penalty()
    assert penalty == reference_card(V2)["penalty"] > 0 and reference_penalty("DataMixingSurrogate-v1") == 0
    env = gym.make(V2)
    assert env.unwrapped.penalty == penalty and gym.make(V2, penalty=0.0).unwrapped.penalty == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
    plain = gym.make(V2, penalty=0.0)
    layout = MixingLayout.of(env)
    actions = np.random.default_rng(0).uniform(-1, 1, (layout.num_steps, layout.num_domains)).astype(np.float32)
    env.reset(seed=0), plain.reset(seed=0)
    for action in actions:
        _, reward, *_, info = env.step(action)
        _, plain_reward, *_, plain_info = plain.step(action)
        assert info["uncertainty"] == plain_info["uncertainty"] > 0
        assert reward == pytest.approx(plain_reward - penalty * info["uncertainty"], abs=1e-12)
    vector = gym.make_vec(V2, num_envs=3, target_field="code", vectorization_mode="vector_entry_point")
    assert vector.unwrapped.penalty == reference_penalty(V2, "code")
    with pytest.raises(ValueError, match="not both"):
        gym.make(V2, surrogate=reference_surrogate_path(V2), target_field="math")


def test_the_penalised_step_gives_every_members_aggregates():
    """change_and_spread: the first member's change exactly, every member's field aggregates as the members give."""
    model = SurrogateModel.load(reference_surrogate_path(V2))
    count = 97
    rng = np.random.default_rng(1)
    improvements = rng.uniform(-0.3, 0.6, (count, model.num_benchmarks))
    weights = rng.dirichlet(np.full(model.num_domains, 0.3), count)
    progress, epochs = rng.uniform(0, 1, count), rng.uniform(0, 5, (count, model.num_domains))
    members = model.member_changes(improvements, weights, progress, epochs)
    change, aggregates = model.change_and_spread(improvements, weights, progress, epochs)
    np.testing.assert_array_equal(change, members[0])
    np.testing.assert_allclose(aggregates, model.aggregates(members).transpose(1, 0, 2), rtol=1e-10, atol=1e-13)


def test_protocol_version_2_trains_on_v2_and_records_its_version(tmp_path):
    protocol = BenchmarkProtocol(surrogate_env_id=V2, timesteps=256, num_envs=4)
    assert protocol.version == 2
    assert BenchmarkProtocol(surrogate_env_id="DataMixingSurrogate-v1").version == 1
    with pytest.raises(KeyError, match="DataMixingSurrogate-v0 ships no reference surrogate"):
        BenchmarkProtocol(surrogate_env_id="DataMixingSurrogate-v0")
    env = make_training_env(protocol)
    assert env.unwrapped.penalty == reference_penalty() and env.target_field == "math"
    env.close()
    # the planner plans under the training env's penalty; its return is its surrogate score, penalty included
    rows = run_benchmark(protocol, ["planner"], 1, tmp_path, validate_runs=0, progress=False, ran_by="tester")
    assert rows["protocol_version"].tolist() == [2] and rows["ran_by"].tolist() == ["tester"]
    assert rows["target_field"].tolist() == ["math"] and rows["env_steps"].tolist() == [0]
    plain = run_benchmark(BenchmarkProtocol(timesteps=256, num_envs=4, surrogate=str(reference_surrogate_path(V2))),
                          ["planner"], 1, tmp_path / "plain", validate_runs=0, progress=False)
    assert plain["surrogate_balanced"][0] > rows["surrogate_balanced"][0]  # no penalty: a higher return


@pytest.mark.parametrize(("previous", "refit"), list(zip(REFITS, REFITS[1:])))
def test_a_refit_adds_the_protocols_own_round_and_keeps_the_previous_version_as_it_was(previous, refit):
    for field in ("math", "code"):
        old, new = reference_card(previous, field), reference_card(refit, field)
        assert new["trajectories"]["policy_episodes"][:-1] == old["trajectories"]["policy_episodes"]
        assert new["trajectories"]["episodes"] > old["trajectories"]["episodes"]
        env = gym.make(refit, target_field=field)
        assert env.unwrapped.penalty == reference_penalty(refit, field) == new["penalty"]
        assert gym.make(previous, target_field=field).unwrapped.penalty == old["penalty"]
    vector = gym.make_vec(refit, num_envs=2, vectorization_mode="vector_entry_point")
    assert vector.unwrapped.penalty == reference_penalty(refit)


def test_protocol_version_6_is_the_default():
    protocol = BenchmarkProtocol(timesteps=256, num_envs=4)  # since its benchmark ran: smaller gaps than v4's
    assert [BenchmarkProtocol(surrogate_env_id=env_id).version for env_id in REFITS] == list(SURROGATE_VERSIONS[1:])
    assert protocol.surrogate_env_id == V6 and protocol.version == 6
    env = make_training_env(protocol)
    assert env.unwrapped.penalty == reference_penalty(V6)
    env.close()
