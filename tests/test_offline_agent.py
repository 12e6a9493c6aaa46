"""The offline Data Mixing Agent, trained on trajectories recorded from a real micro env (3-step episodes)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import MICRO, TINY_DATA
from safetensors import safe_open

import mixing_gym  # noqa: F401  (registers the env)
from agents import FunctionAgent, make_agent, play_episode
from agents.offline import (
    CONFIG_FILE,
    DESCRIPTOR_FEATURES,
    TOKEN_FEATURES,
    WEIGHTS_FILE,
    DataMixingAgent,
    DomainFeaturizer,
    OfflineConfig,
    behaviour_cloning_loss,
    best_episodes,
    policy_target_share,
    train_offline_agent,
    transitions,
)
from agents.registry import AgentResources, Need, agent_spec
from mixing_gym.descriptors import DOMAIN_FEATURES, domain_features
from mixing_gym.domains import get_domain_space
from mixing_gym.layout import BenchmarkSpec, MixingLayout
from mixing_gym.mdp import action_to_weights
from mixing_gym.reference import REFERENCE_CODE_TRAJECTORIES, REFERENCE_TRAJECTORIES
from mixing_gym.trajectories import TrajectoryDataset, load_trajectories

NUM_EPISODES = 6
#: A few updates of a small network: enough to see the losses move, cheap on two shared cores.
FAST = OfflineConfig(hidden_size=16, num_heads=2, num_layers=1, batch_size=8, bc_steps=20, cql_steps=10,
                     cql_num_random=2)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread for the envs and the networks here; the process's setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def env(prepared, cache_dir):
    environment = gym.make("DataMixing-v0", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA,
                           benchmarks="bpb", num_steps=3, torch_threads=1)
    yield environment
    environment.close()


@pytest.fixture(scope="module")
def dataset(env) -> TrajectoryDataset:
    """Episodes of random Dirichlet mixtures, recorded as the trajectory contract describes them."""
    layout = MixingLayout.of(env)
    rng = np.random.default_rng(0)
    dirichlet = FunctionAgent(lambda observation, _: layout.weights_to_action(
        rng.dirichlet(np.full(layout.num_domains, 0.3))))
    dataset = TrajectoryDataset.from_env(env, {"preset": "micro", "num_steps": 3})
    dataset.episodes = [play_episode(dirichlet, env, seed).trajectory("dirichlet(alpha=0.3)")
                        for seed in range(NUM_EPISODES)]
    return dataset


@pytest.fixture(scope="module")
def trained(dataset):
    return train_offline_agent(dataset, FAST, seed=0)


def _layout(space: str | dict, extra: tuple[BenchmarkSpec, ...] = (), action_mode: str = "logits") -> MixingLayout:
    """The layout of a domain space without building its env (acting needs no more): a held-out
    bits-per-byte benchmark per domain, then the ``extra`` ones."""
    domains = get_domain_space(space)
    benchmarks = (*(BenchmarkSpec(f"mg_bpb_{d.name}", d.field, "lm", d.name) for d in domains.domains), *extra)
    return MixingLayout(tuple(domains.names), tuple(domains.fields), benchmarks, {b.name: 1.0 for b in benchmarks},
                        4, action_mode)


def _observation(layout: MixingLayout, seed: int) -> np.ndarray:
    space = layout.observation_space
    space.seed(seed)
    observation = space.sample()
    k = layout.num_domains
    observation[:k] /= observation[:k].sum()
    observation[k:-1] = np.clip(observation[k:-1], -1.0, 1.0)  # improvements of a plausible size
    return observation


#: Math space with multiple-choice tasks for some domains (K = 3), and the code space (K = 8).
TINY_SPACE = {"name": "tiny", "target_field": "math", "domains": [
    {"name": "news", "field": "source"}, {"name": "licenses", "field": "source"},
    {"name": "math_fractions", "field": "target"}]}
HUMANEVAL = BenchmarkSpec("mg_humaneval_mc", "target", "accuracy")
OTHER_SPACES = [
    _layout(TINY_SPACE, (BenchmarkSpec("mg_mc_math_fractions", "target", "accuracy", "math_fractions"),
                         BenchmarkSpec("mg_source_continuation", "source", "accuracy"))),
    _layout("code", (HUMANEVAL,)),
]


def test_transitions_follow_torchrl_layout(dataset):
    data = transitions(dataset, reward_scale=10.0)
    k, steps = dataset.layout.num_domains, NUM_EPISODES * 3
    assert data.batch_size == (steps,)
    assert data["tokens"].shape == data["next", "tokens"].shape == (steps, k, len(TOKEN_FEATURES))
    assert data["action"].abs().max() < 1  # strictly inside the TanhNormal's support
    rewards = np.concatenate([ep.rewards for ep in dataset.episodes])
    np.testing.assert_allclose(data["next", "reward"].squeeze(-1).numpy(), rewards * 10.0, rtol=1e-5)
    assert data["next", "done"].squeeze(-1).tolist() == [False, False, True] * NUM_EPISODES
    # a transition's next tokens are the following transition's tokens within an episode
    torch.testing.assert_close(data["next", "tokens"][0], data["tokens"][1])
    returns = [float(ep.rewards.sum()) for ep in dataset.episodes]
    assert best_episodes(dataset, 0.25).tolist() == sorted(np.argsort(returns)[::-1][:2].tolist())


def test_trains_a_few_iterations(trained, dataset):
    agent, log = trained
    assert (log["phase"] == "bc").sum() == FAST.bc_steps and (log["phase"] == "cql").sum() == FAST.cql_steps
    cql = log[log["phase"] == "cql"]
    losses = ["loss_actor", "loss_qvalue", "loss_cql", "loss_alpha"]
    assert np.isfinite(cql[losses].to_numpy()).all() and np.isfinite(log["loss_bc"].dropna()).all()
    for loss in ["loss_bc", "loss_qvalue", "loss_cql"]:
        assert log[loss].dropna().nunique() > 1, f"{loss} never changed"
    assert log["seconds"].is_monotonic_increasing
    assert agent.trained_on["episodes"] == NUM_EPISODES and agent.temperature == 0.25
    shares = log.dropna(subset=["target_share"])  # logged where each phase ends
    assert shares[["phase", "step"]].values.tolist() == [["bc", FAST.bc_steps - 1], ["cql", FAST.cql_steps - 1]]
    assert shares["target_share"].between(0.0, 1.0).all()
    assert shares["target_share"].iloc[-1] == pytest.approx(policy_target_share(
        agent.actor, transitions(dataset)["tokens"], dataset.layout.target_mask, agent.temperature))


def test_centred_actions_make_the_same_mixtures_from_the_cubes_centre(dataset):
    as_env, centred = (transitions(dataset, action_encoding=encoding)["action"].numpy()
                       for encoding in ("max_one", "centred"))
    assert np.allclose(as_env.max(-1), 1 - 1e-3)  # the env's encoding: every largest logit on the cube's face
    np.testing.assert_allclose(centred.max(-1), -centred.min(-1), atol=1e-6)  # symmetric about 0
    assert not np.allclose(centred, as_env)
    for row_env, row_centred in zip(as_env, centred):  # alike but for the margin inside the cube (1e-3 / 0.25)
        np.testing.assert_allclose(action_to_weights(row_centred, row_centred.shape, "logits", 0.25),
                                   action_to_weights(row_env, row_env.shape, "logits", 0.25), rtol=1e-2)


def test_standardised_rewards_and_returns_to_go(dataset):
    data = transitions(dataset, reward_scale=2.0, standardise_rewards=True)
    rewards = data["next", "reward"].squeeze(-1).numpy()
    assert rewards.mean() == pytest.approx(0.0, abs=1e-5) and rewards.std() == pytest.approx(2.0, rel=1e-4)
    returns = data["return_to_go"].squeeze(-1).numpy().reshape(NUM_EPISODES, 3)
    np.testing.assert_allclose(returns, np.cumsum(rewards.reshape(NUM_EPISODES, 3)[:, ::-1], 1)[:, ::-1], atol=1e-5)


def test_awr_trains_a_value_then_the_actor_and_leans_to_the_better_actions(dataset):
    config = OfflineConfig(**{**FAST.__dict__, "bc_steps": 0, "method": "awr", "awr_steps": 60,
                              "action_encoding": "centred", "standardise_rewards": True, "reward_scale": 1.0})
    agent, log = train_offline_agent(dataset, config, seed=0)
    assert log["phase"].value_counts().to_dict() == {"value": 60, "awr": 60}
    assert log["loss_value"].dropna().iloc[-10:].mean() < log["loss_value"].dropna().iloc[:10].mean()
    assert log.dropna(subset=["target_share"])["phase"].tolist() == ["awr"]
    # With a temperature this low AWR imitates the transitions of the largest advantage: on those states the
    # actor's likelihood of the recorded action rises more than on the others.
    data = transitions(dataset, action_encoding="centred", standardise_rewards=True)
    greedy = OfflineConfig(**{**config.__dict__, "awr_beta": 0.05})
    untrained = train_offline_agent(dataset, OfflineConfig(**{**greedy.__dict__, "awr_steps": 0}), seed=0)[0]
    trained = train_offline_agent(dataset, greedy, seed=0)[0]
    first_steps = torch.arange(len(data)) % 3 == 0  # at an episode's start the return-to-go is its return
    order = data["return_to_go"].squeeze(-1)[first_steps].argsort(descending=True)
    top, bottom = data[first_steps][order[:1]], data[first_steps][order[-1:]]
    with torch.no_grad():
        gain = {name: behaviour_cloning_loss(untrained.actor, part["tokens"], part["action"]).item()
                - behaviour_cloning_loss(trained.actor, part["tokens"], part["action"]).item()
                for name, part in (("top", top), ("bottom", bottom))}
    assert gain["top"] > gain["bottom"], gain


def test_behaviour_cloning_moves_the_actor_to_the_best_actions(dataset):
    data = transitions(dataset)
    best = torch.from_numpy(np.isin(data["episode"].numpy(), best_episodes(dataset, 0.25)))
    demonstrations = data[best]

    def bc_loss(bc_steps: int) -> float:
        agent, _ = train_offline_agent(dataset, OfflineConfig(**{**FAST.__dict__, "bc_steps": bc_steps,
                                                                 "cql_steps": 0}), seed=0)
        with torch.no_grad():
            return behaviour_cloning_loss(agent.actor, demonstrations["tokens"], demonstrations["action"]).item()

    before, after = bc_loss(0), bc_loss(60)
    assert after < before / 2, (before, after)


def test_same_seed_same_weights(dataset):
    config = OfflineConfig(**{**FAST.__dict__, "bc_steps": 3, "cql_steps": 3})
    weights = [train_offline_agent(dataset, config, seed=seed)[0].actor.state_dict() for seed in (0, 0, 1)]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert not all(torch.equal(weights[0][name], weights[2][name]) for name in weights[0])


def test_acts_on_the_real_env_and_on_spaces_of_other_sizes(trained, env):
    agent, _ = trained
    record = play_episode(agent, env, seed=100).record()
    assert len(record["steps"]) == 3 and np.isfinite(record["balanced"])
    sizes = set()
    for env_info in OTHER_SPACES:
        agent.reset(env_info)
        action = agent.act(_observation(env_info, seed=0), {})
        assert action.shape == (env_info.num_domains,) and env_info.action_space.contains(action)
        sizes.add(env_info.num_domains)
    assert len(sizes) == 2 and env.unwrapped.num_domains not in sizes

    weights_info = _layout("code", action_mode="weights")
    agent.reset(weights_info)
    weights = agent.act(_observation(weights_info, seed=0), {})
    assert np.all(weights >= 0) and np.isclose(weights.sum(), 1.0)


def test_actions_follow_the_domains_when_they_are_permuted(trained):
    agent, _ = trained
    env_info = OTHER_SPACES[1]
    observation = _observation(env_info, seed=1)
    order = np.random.default_rng(0).permutation(env_info.num_domains)
    k = env_info.num_domains
    permuted_info = _layout({"name": "permuted", "target_field": "code", "domains": [
        {"name": env_info.domain_names[i], "field": env_info.domain_fields[i]} for i in order]}, (HUMANEVAL,))
    permuted = np.concatenate([observation[order], observation[k:][np.r_[order, k:len(observation) - k]]])
    agent.reset(env_info)
    action = agent.act(observation, {})
    agent.reset(permuted_info)
    np.testing.assert_allclose(agent.act(permuted, {}), action[order], atol=1e-5)


def test_an_agent_that_does_not_observe_the_mixture_acts_the_same_whatever_it_was(dataset, tmp_path):
    config = OfflineConfig(**{**FAST.__dict__, "cql_steps": 3, "observe_mixture": False})
    agent = DataMixingAgent.load(train_offline_agent(dataset, config, seed=0)[0].save(tmp_path / "blind"))
    assert agent.config.observe_mixture is False
    env_info = OTHER_SPACES[1]
    observation, k = _observation(env_info, seed=3), env_info.num_domains
    other = observation.copy()
    other[:k] = np.random.default_rng(1).dirichlet(np.ones(k))
    agent.reset(env_info)
    np.testing.assert_array_equal(agent.act(other, {}), agent.act(observation, {}))
    other[k] += 0.5  # a score it does read
    assert not np.array_equal(agent.act(other, {}), agent.act(observation, {}))


def test_save_load_round_trip(trained, tmp_path):
    agent, _ = trained
    path = agent.save(tmp_path / "dma")
    with safe_open(path / WEIGHTS_FILE, framework="pt") as weights:
        assert set(weights.keys()) == set(agent.actor.state_dict())
    loaded = make_agent("dma", AgentResources(model=path))
    assert isinstance(loaded, DataMixingAgent) and agent_spec("dma").needs is Need.TRAJECTORIES
    assert loaded.config == agent.config and loaded.trained_on == agent.trained_on
    for env_info in OTHER_SPACES:
        observation = _observation(env_info, seed=2)
        agent.reset(env_info)
        loaded.reset(env_info)
        np.testing.assert_array_equal(loaded.act(observation, {}), agent.act(observation, {}))


def test_loading_something_else_is_a_clear_error(trained, tmp_path):
    agent, _ = trained
    with pytest.raises(ValueError, match="not a saved Data Mixing Agent"):
        DataMixingAgent.load(tmp_path)
    path = agent.save(tmp_path / "dma")
    meta = json.loads((path / CONFIG_FILE).read_text())
    (path / CONFIG_FILE).write_text(json.dumps({**meta, "format": "sb3-ppo"}))
    with pytest.raises(ValueError, match="does not describe a Data Mixing Agent"):
        DataMixingAgent.load(path)
    (path / CONFIG_FILE).write_text(json.dumps(meta))
    (path / WEIGHTS_FILE).write_bytes((path / WEIGHTS_FILE).read_bytes()[:-8])
    with pytest.raises(ValueError, match="checksum"):
        DataMixingAgent.load(path)


def test_bad_input_is_a_clear_error(dataset):
    with pytest.raises(ValueError, match="bc_top_fraction"):
        OfflineConfig(bc_top_fraction=0.0)
    with pytest.raises(ValueError, match="methods are"):
        OfflineConfig(method="iql")
    with pytest.raises(ValueError, match="action encodings"):
        OfflineConfig(action_encoding="simplex")
    with pytest.raises(ValueError, match="no episodes"):
        train_offline_agent(TrajectoryDataset(**{**dataset.__dict__, "episodes": []}), FAST)
    featurize = DomainFeaturizer(dataset.layout)
    with pytest.raises(ValueError, match="entries, expected"):
        featurize(np.zeros(3, dtype=np.float32))


# ------------------------------------------------------------------------------------------------ several spaces

#: FAST's network, AWR after the warm start, tokens that read the domains' descriptors.
TRANSFER_FAST = OfflineConfig(**{**FAST.__dict__, "method": "awr", "awr_steps": 10, "standardise_rewards": True,
                                 "read_descriptors": True})


@pytest.fixture(scope="module")
def two_spaces() -> list[TrajectoryDataset]:
    """The committed reference trajectories of both fields: real ``small`` episodes of math-v1 (30 domains) and of
    code-v1 (29), their layouts holding the domains' descriptors."""
    return [load_trajectories(REFERENCE_TRAJECTORIES), load_trajectories(REFERENCE_CODE_TRAJECTORIES)]


def _flat_observation(layout: MixingLayout) -> np.ndarray:
    """The uniform mixture and every score at 0: domains of a field differ only in what they hold."""
    observation = np.zeros(len(layout.observation_names), dtype=np.float32)
    observation[:layout.num_domains] = 1.0 / layout.num_domains
    return observation


def test_descriptor_features_are_standardised_over_the_space_and_follow_its_domains(two_spaces):
    layout = two_spaces[0].layout
    features = domain_features(layout)
    assert features.shape == (layout.num_domains, len(DOMAIN_FEATURES))
    for column in ("log_train_tokens", "base_bpb"):
        values = features[:, DOMAIN_FEATURES.index(column)]
        assert abs(values.mean()) < 1e-9 and values.std() == pytest.approx(1.0)
    # A task's own domain ranks first among the target field's by its largest target-task importance.
    target_max = features[:, DOMAIN_FEATURES.index("target_task_importance_max")]
    assert layout.domain_names[int(np.argmax(target_max))] in ("math_gsm_symbolic", "math_simple_equations")
    tokens = transitions(two_spaces[0], read_descriptors=True)["tokens"].numpy()
    assert tokens.shape[-1] == len(TOKEN_FEATURES) + len(DESCRIPTOR_FEATURES)
    read = tokens[:, :, len(TOKEN_FEATURES):]
    np.testing.assert_allclose(read, np.broadcast_to(features, read.shape), rtol=1e-6)
    with pytest.raises(ValueError, match="no domain descriptors"):
        DomainFeaturizer(_layout("code"), read_descriptors=True)


def test_an_agent_trained_on_several_spaces_tells_a_fields_domains_apart_by_what_they_hold(two_spaces, tmp_path):
    agent, log = train_offline_agent(two_spaces, TRANSFER_FAST, seed=0)
    assert [entry["episodes"] for entry in agent.trained_on["datasets"]] == [len(d.episodes) for d in two_spaces]
    assert list(dict.fromkeys(log["phase"])) == ["bc", "value", "awr"] and 0 < log["target_share"].dropna().iloc[-1] < 1
    blind, _ = train_offline_agent(two_spaces, OfflineConfig(**{**TRANSFER_FAST.__dict__, "read_descriptors": False}),
                                   seed=0)
    loaded = DataMixingAgent.load(agent.save(tmp_path / "transfer"))
    for dataset in two_spaces:
        layout = dataset.layout
        observation = _flat_observation(layout)
        target = layout.target_mask
        for one in (agent, blind, loaded):
            one.reset(layout)
        told_apart, alike = agent.act(observation, {}), blind.act(observation, {})
        np.testing.assert_array_equal(loaded.act(observation, {}), told_apart)
        # Without descriptors every domain of a field is the same token: one logit per field.
        assert np.ptp(alike[target]) < 1e-5 and np.ptp(alike[~target]) < 1e-5
        assert np.ptp(told_apart[target]) > 1e-3 and np.ptp(told_apart[~target]) > 1e-3


def test_several_spaces_need_a_method_that_learns_from_them_all(two_spaces):
    with pytest.raises(ValueError, match="CQL learns from one domain space"):
        train_offline_agent(two_spaces, FAST)
