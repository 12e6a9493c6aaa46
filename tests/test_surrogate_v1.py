"""The surrogate on real DataMixing-v1 micro trajectories: epochs stepped as the real env counts them, per-domain
coefficients for the task benchmarks, a bootstrap ensemble and MOPO's penalty, storage, fidelity."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import MICRO, TINY_DATA

import mixing_gym  # noqa: F401  (registers the envs)
from agents.base import play_episode
from agents.collect import MixturePlan, TiltPlan, episode_policy
from mixing_gym.envs.surrogate import rollout_fidelity
from mixing_gym.surrogate import SurrogateModel, fidelity
from mixing_gym.trajectories import TrajectoryDataset

NUM_STEPS = 3
NUM_EPISODES = 8
#: The collector's own policies: perturbed baselines, tilted field mixtures and Dirichlet walks.
PLAN = MixturePlan(baseline_share=0.3, tilts=TiltPlan(share=0.4))


@pytest.fixture(scope="module")
def dataset(prepared, cache_dir):
    env = gym.make("DataMixing-v1", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA, num_steps=NUM_STEPS,
                   action_mode="weights", torch_threads=1)
    recorded = TrajectoryDataset.from_env(env, {"preset": "micro", "num_steps": NUM_STEPS, "action_mode": "weights"})
    for index in range(NUM_EPISODES):
        label, policy, env_seed = episode_policy(PLAN, 0, index)
        recorded.episodes.append(play_episode(policy, env, env_seed).trajectory(label))
    env.close()
    return recorded


@pytest.fixture(scope="module")
def ensemble(dataset):
    return SurrogateModel.fit(dataset, ensemble=3, seed=0)


def test_v1_models_give_each_benchmark_its_own_coefficients_over_the_domains(dataset, ensemble):
    layout = dataset.layout
    assert layout.observe_epochs and ensemble.per_domain and ensemble.ensemble_size == 3
    assert ensemble.metadata["groups"] == sorted(layout.benchmark_names)
    assert ensemble.coefficients.shape[-1] > 3 * layout.num_domains  # the polynomial plus 3 features a domain
    assert not np.allclose(ensemble.coefficients[0], ensemble.coefficients[1])  # members saw other episodes
    again = SurrogateModel.fit(dataset, ensemble=3, seed=0)
    np.testing.assert_array_equal(again.coefficients, ensemble.coefficients)  # a seed gives one ensemble
    grouped = SurrogateModel.fit(dataset, per_domain=False)
    assert not grouped.per_domain and grouped.ensemble_size == 1 and grouped.coefficients.shape[-1] < 40


def test_epochs_grow_as_the_real_env_counts_them(dataset, ensemble):
    episode = dataset.episodes[0]
    layout = dataset.layout
    env = gym.make("DataMixingSurrogate-v0", surrogate=ensemble, action_mode="weights")
    observation, _ = env.reset(seed=0)
    assert observation.shape == (2 * layout.num_domains + layout.num_benchmarks + 3,)
    for recorded in episode.observations[1:]:
        observation, _, _, _, info = env.step(recorded[layout.weight_slice])
        np.testing.assert_allclose(observation[layout.epochs_slice], recorded[layout.epochs_slice], rtol=1e-5,
                                   atol=1e-6)  # whole sequences, split as the real env splits them
        assert info["epochs"].shape == (layout.num_domains,)
    env.close()


def test_the_penalty_lowers_each_reward_by_the_ensembles_disagreement(ensemble):
    rng = np.random.default_rng(0)
    plain = gym.make("DataMixingSurrogate-v0", surrogate=ensemble, action_mode="weights")
    penalised = gym.make("DataMixingSurrogate-v0", surrogate=ensemble, action_mode="weights", penalty=2.0)
    plain.reset(seed=0)
    penalised.reset(seed=0)
    for _ in range(NUM_STEPS):
        weights = rng.dirichlet(np.full(plain.action_space.shape[0], 0.3)).astype(np.float32)
        _, reward, _, _, info = plain.step(weights)
        _, lower, _, _, same = penalised.step(weights)
        assert info["uncertainty"] > 0 and same["uncertainty"] == info["uncertainty"]
        assert lower == pytest.approx(reward - 2.0 * info["uncertainty"])
    with pytest.raises(ValueError, match="penalty > 0 needs an ensemble"):
        gym.make("DataMixingSurrogate-v0", surrogate=_single(ensemble), penalty=1.0)
    with pytest.raises(ValueError, match="penalty must be a finite number"):
        gym.make("DataMixingSurrogate-v0", surrogate=ensemble, penalty=-1.0)


def _single(model: SurrogateModel) -> SurrogateModel:
    """The ensemble's first member alone."""
    return SurrogateModel(model.metadata, model.coefficients[:1], model.residual_std, model.feature_range,
                          model.epochs_per_sequence)


def test_checkers_storage_and_fidelity(dataset, ensemble, tmp_path):
    from gymnasium.utils.env_checker import check_env

    env = gym.make("DataMixingSurrogate-v0", surrogate=ensemble)  # warns that v1 exists, as Gymnasium does
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    loaded = SurrogateModel.load(ensemble.save(tmp_path / "v1"))
    steps = ensemble.transitions(dataset)
    np.testing.assert_array_equal(loaded.epochs_per_sequence, ensemble.epochs_per_sequence)
    assert loaded.sequences_per_step == ensemble.sequences_per_step == MICRO.tokens_per_step // MICRO.seq_len
    np.testing.assert_array_equal(
        loaded.predict_change(steps.improvements, steps.weights, steps.progress, steps.epochs),
        ensemble.predict_change(steps.improvements, steps.weights, steps.progress, steps.epochs))

    fit_on, held_out = (dataclasses.replace(dataset, episodes=part)
                        for part in (dataset.episodes[:6], dataset.episodes[6:]))
    model = SurrogateModel.fit(fit_on, ensemble=2)
    assert fidelity(model, held_out)["transitions"] == 2 * NUM_STEPS
    report = rollout_fidelity(model, held_out)
    assert report["episodes"] == 2 and np.isfinite(report["final"]["rmse"])


def test_the_planner_plans_on_the_surrogate_and_plays_its_plan_on_the_real_env(dataset, ensemble, cache_dir):
    from agents.planner import SurrogatePlanner

    layout = dataset.layout
    planner = SurrogatePlanner(ensemble, phases=NUM_STEPS, population=32, elites=8, iterations=10, seed=0).learn()
    uniform = np.full((1, NUM_STEPS, layout.num_domains), 1.0 / layout.num_domains)
    assert planner.schedule.shape == (NUM_STEPS, layout.num_domains)
    np.testing.assert_allclose(planner.schedule.sum(axis=1), 1.0)
    assert planner.planned_return == pytest.approx(planner.returns(planner.schedule[None])[0])
    assert planner.planned_return > planner.returns(uniform)[0]  # the search moved off its starting point
    again = SurrogatePlanner(ensemble, phases=NUM_STEPS, population=32, elites=8, iterations=10, seed=0).learn()
    np.testing.assert_array_equal(again.schedule, planner.schedule)  # the surrogate and the seed fix the plan
    penalised = SurrogatePlanner(ensemble, penalty=5.0, population=32, elites=8, iterations=10, seed=0).learn()
    unpenalised = SurrogatePlanner(ensemble).returns(penalised.schedule[None])[0]
    assert penalised.planned_return < unpenalised  # each step paid for the members' disagreement
    assert np.all(np.diff(penalised.schedule, axis=0) == 0)  # one phase: one mixture held the whole episode

    env = gym.make("DataMixing-v1", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA, num_steps=NUM_STEPS,
                   action_mode="weights", torch_threads=1)
    record = play_episode(planner, env, seed=5).record()
    env.close()
    np.testing.assert_allclose([step["mixture"] for step in record["steps"]], planner.schedule, atol=1e-6)


def test_the_planner_refuses_another_domain_space_and_bad_settings(ensemble, tmp_path):
    from agents.planner import SurrogatePlanner
    from agents.registry import AgentResources, make_agent

    layout = ensemble.layout
    with pytest.raises(ValueError, match="phases must be 1 .. 3"):
        SurrogatePlanner(ensemble, phases=4)
    with pytest.raises(ValueError, match="elites <= population"):
        SurrogatePlanner(ensemble, population=4, elites=8)
    planner = SurrogatePlanner(ensemble, population=8, elites=2, iterations=1)
    with pytest.raises(RuntimeError, match="learn"):
        planner.reset(layout)
        planner.mixture(np.zeros(len(layout.observation_names)), {})
    planner.learn()
    other = dataclasses.replace(layout, domain_names=tuple(reversed(layout.domain_names)))
    with pytest.raises(ValueError, match="tied to its domain space"):
        planner.reset(other)

    made = make_agent("planner", AgentResources(surrogate=ensemble.save(tmp_path / "surrogate")))
    assert isinstance(made, SurrogatePlanner) and made.schedule.shape == (NUM_STEPS, layout.num_domains)
    loaded = make_agent("planner", AgentResources(model=made.save(tmp_path / "plan")))  # a saved plan plays as made
    np.testing.assert_array_equal(loaded.schedule, made.schedule)
    with pytest.raises(ValueError, match="tied to its domain space"):
        loaded.reset(other)


def test_surrogate_v1_steps_the_shipped_reference_surrogate_that_the_committed_trajectories_give():
    from gymnasium.utils.env_checker import check_env

    from mixing_gym.layout import MixingLayout
    from mixing_gym.reference import REFERENCE_TRAJECTORIES, reference_card, reference_surrogate_path
    from mixing_gym.trajectories import load_trajectories

    env = gym.make("DataMixingSurrogate-v1")  # no argument: the surrogate shipped in the package
    layout = MixingLayout.of(env)
    assert (layout.num_domains, layout.num_steps) == (30, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
    vector = gym.make_vec("DataMixingSurrogate-v1", num_envs=4, vectorization_mode="vector_entry_point")
    vector.reset(seed=0)
    for _ in range(layout.num_steps):
        _, rewards, terminated, _, _ = vector.step(np.zeros((4, layout.num_domains), dtype=np.float32))
    assert terminated.all() and np.isfinite(rewards).all()

    card = reference_card()
    trajectories = load_trajectories(REFERENCE_TRAJECTORIES)
    assert card["trajectories"]["episodes"] == len(trajectories.episodes) == 128
    assert card["fidelity_on_held_out"]["held_out_episodes"] == 32
    fresh = SurrogateModel.fit(trajectories, ensemble=card["model"]["ensemble"], seed=card["model"]["seed"])
    shipped = SurrogateModel.load(reference_surrogate_path())
    # every member's prediction from the same states: the shipped arrays are the ones the committed data give, to
    # the rounding of the ridge solve, which depends on the CPU's BLAS kernels (6e-9 relative seen between two
    # machines; another fit, or other data, moves them by orders of magnitude more)
    weights = np.random.default_rng(0).dirichlet(np.ones(layout.num_domains), 16)
    state = (np.zeros((16, shipped.num_benchmarks)), weights, np.full(16, 0.25), np.zeros_like(weights), slice(None))
    np.testing.assert_allclose(shipped.member_changes(*state), fresh.member_changes(*state), rtol=1e-6, atol=1e-12)


def test_a_step_evaluates_the_fitted_polynomial_for_any_members():
    """The compiled step (mixing_gym.kernels) equals the model as fit: the ridge coefficients times every product
    of degree <= 2 of the clipped numpy design's features, plus the domain features, for any members."""
    from mixing_gym.reference import reference_surrogate_path
    from mixing_gym.surrogate import _LEFT, _RIGHT, NUM_TERMS

    model = SurrogateModel.load(reference_surrogate_path())
    count = 293
    rng = np.random.default_rng(0)
    improvements = rng.uniform(-0.3, 0.6, (count, model.num_benchmarks))
    weights = rng.dirichlet(np.full(model.num_domains, 0.3), count)
    progress, epochs = rng.uniform(0, 1.2, count), rng.uniform(0, 5, (count, model.num_domains))

    design = np.concatenate([np.ones((count, model.num_benchmarks, 1)),
                             np.clip(model.features(improvements, weights, progress), *model.feature_range)], axis=-1)
    terms = design[..., _LEFT] * design[..., _RIGHT]
    coefficients = model.coefficients[:, model.group_of_benchmark]  # (E, B, P)
    domain = model.domain_features(weights, progress, epochs)
    expected = (np.einsum("nbp,ebp->enb", terms, coefficients[..., :NUM_TERMS])
                + np.einsum("nd,ebd->enb", domain, coefficients[..., NUM_TERMS:]))
    np.testing.assert_allclose(model.member_changes(improvements, weights, progress, epochs), expected,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.member_changes(improvements, weights, progress, epochs, slice(1, 4, 2)),
                               expected[1:4:2], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.predict_change(improvements[:5], weights[:5], progress[:5], epochs[:5]),
                               expected[0, :5], rtol=1e-10, atol=1e-12)


def test_a_nan_in_one_of_thousands_of_vector_envs_is_named_in_a_short_message():
    vector = gym.make_vec("DataMixingSurrogate-v1", num_envs=4096)
    vector.reset(seed=0)
    actions = np.zeros(vector.action_space.shape, dtype=np.float32)
    actions[1717, 3] = np.nan
    with pytest.raises(ValueError, match=r"\(env 1717, domain 3 = nan\)") as error:
        vector.step(actions)
    assert len(str(error.value)) < 200
    vector.close()
