"""The offline Data Mixing Agent (Yang et al., 2025, arXiv 2507.15640): behaviour cloning, then CQL.

The agent learns from recorded trajectories (:class:`mixing_gym.trajectories.TrajectoryDataset`) without
touching the env: a supervised warm start on the actions of the best episodes, then Conservative
Q-Learning (torchrl's :class:`~torchrl.objectives.CQLLoss`) on every transition, or, with
``OfflineConfig(method="awr")``, advantage-weighted regression on Monte-Carlo returns (no critic of actions, no
entropy term: :func:`awr_phase`).

Nothing in its networks depends on the number of domains K. Every domain is a *token*: its weight, its
field, its own benchmark improvements, and the global context of the observation broadcast to it
(:class:`DomainFeaturizer`); with ``OfflineConfig(read_descriptors=True)`` also what the domain holds, its
descriptors as :func:`mixing_gym.descriptors.domain_features` makes them comparable between spaces (how its text
relates to the target and the source tasks, its size, the base model's loss on it), so that a domain is known by its
content rather than by its place among the others. One encoder shared by all tokens, then self-attention across
them without positional encoding, makes the networks permutation equivariant over domains; the actor reads one
``(loc, scale)`` per token, the critic mean-pools the tokens (each also holding its action entry) into Q.
So one trained agent acts on domain spaces of any size and composition, and it can learn from trajectories of
several spaces at once (``train_offline_agent([dataset, ...])``): each mini-batch comes from one space, chosen in
proportion to its transitions, and rewards are standardised and the best episodes chosen within each space.

``train_offline_agent(dataset)`` returns a :class:`DataMixingAgent` and its training log;
``agent.save(dir)`` writes ``agent.safetensors`` and ``agent.json``, ``DataMixingAgent.load(dir)`` reads them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.modules import ProbabilisticActor, TanhNormal, ValueOperator
from torchrl.objectives import CQLLoss, SoftUpdate

from agents.base import Agent
from mixing_gym.descriptors import DOMAIN_FEATURES, domain_features
from mixing_gym.layout import MixingLayout
from mixing_gym.mdp import action_to_weights, weights_to_action
from mixing_gym.storage import atomic_write_bytes, atomic_write_json, sha256_file
from mixing_gym.trajectories import TrajectoryDataset, as_dataset

#: Kinds of the per-domain benchmarks a token reads (its held-out bits per byte, its multiple-choice
#: accuracy); a domain without one gets 0 there and a presence flag of 0, so spaces with and without
#: accuracy tasks work.
DOMAIN_SCORE_KINDS = ("lm", "accuracy")
#: Observation entries every token receives as global context.
GLOBAL_ENTRIES = ("score/source", "score/target", "progress")
#: What each token holds, in order (the input features of the actor's encoder).
TOKEN_FEATURES = ("weight", "log_relative_weight", "is_target",
                  *(f"score/{kind}<domain>" for kind in DOMAIN_SCORE_KINDS),
                  *(f"has/{kind}<domain>" for kind in DOMAIN_SCORE_KINDS), *GLOBAL_ENTRIES, "target_share")
#: The token features an agent with ``read_descriptors`` appends: its domain's
#: :data:`~mixing_gym.descriptors.DOMAIN_FEATURES`.
DESCRIPTOR_FEATURES = tuple(f"descriptor/{name}" for name in DOMAIN_FEATURES)
#: The token features that read the current mixture: 0 in every token of an agent that does not observe it.
MIXTURE_FEATURES = ("weight", "log_relative_weight", "target_share")
#: Floor of ``K * weight`` before its log: a domain off the mixture reads as 1/1000 of uniform.
MIN_RELATIVE_WEIGHT = 1e-3
#: Recorded actions are pulled this far inside [-1, 1]: the tanh-squashed policy puts zero density on
#: the boundary, where :func:`~mixing_gym.mdp.weights_to_action` places every largest and every floored logit.
ACTION_MARGIN = 1e-3
#: How recorded logits are written before the agent learns from them (``OfflineConfig.action_encoding``). The env
#: ignores a shift common to all logits; ``"max_one"`` fixes it as the env's :func:`~mixing_gym.mdp.weights_to_action`
#: does (the largest logit at +1, on a face of the cube, in the tanh's saturation), ``"centred"`` puts the largest
#: and the smallest logit symmetric about 0 (uniform is the cube's centre), which moves no logit out of [-1, 1] and
#: so changes no mixture.
ACTION_ENCODINGS = ("max_one", "centred")
#: The learning phases after the warm start (``OfflineConfig.method``).
METHODS = ("cql", "awr")

FORMAT = "mixing-gym/data-mixing-agent"
WEIGHTS_FILE = "agent.safetensors"
CONFIG_FILE = "agent.json"


# ------------------------------------------------------------------------------------------------
# Per-domain features


def token_features(read_descriptors: bool = False) -> tuple[str, ...]:
    """What each token holds, in order: :data:`TOKEN_FEATURES`, then :data:`DESCRIPTOR_FEATURES` where
    ``read_descriptors``.

    Args:
        read_descriptors: whether the tokens read the domains' descriptors (``OfflineConfig.read_descriptors``).
    """
    return TOKEN_FEATURES + DESCRIPTOR_FEATURES * read_descriptors


class DomainFeaturizer:
    """Turns observations of one env layout into per-domain tokens ``(..., K, len(token_features(...)))``.

    A domain's benchmarks are found through the layout (:meth:`~mixing_gym.layout.MixingLayout.domain_benchmarks`),
    so any layout works; its held-out bits per byte and multiple-choice accuracy are used where present.

    Args:
        layout: the env's layout.
        observe_mixture: whether the tokens read the mixture of the last step (``MIXTURE_FEATURES``); without
            it they read 0 there (see :class:`OfflineConfig`).
        read_descriptors: whether the tokens end with the domain's descriptors (:data:`DESCRIPTOR_FEATURES`, the
            same at every step); the layout must hold them.
    """

    def __init__(self, layout: MixingLayout, observe_mixture: bool = True, read_descriptors: bool = False):
        self._descriptors = domain_features(layout).astype(np.float32) if read_descriptors else None
        index = {name: i for i, name in enumerate(layout.observation_names)}
        self._mixture_mask = np.array([name not in MIXTURE_FEATURES or observe_mixture for name in TOKEN_FEATURES],
                                      dtype=np.float32)
        self.num_domains = layout.num_domains
        self.observation_size = len(layout.observation_names)
        self._weight_index = np.array([index[f"weight/{name}"] for name in layout.domain_names])
        score_index = np.array([[index[f"score/{b.name}"] if b is not None else -1  # (kinds, K), then (K, kinds)
                                 for b in layout.domain_benchmarks(kind)] for kind in DOMAIN_SCORE_KINDS]).T
        self._score_present = score_index >= 0
        self._score_index = np.maximum(score_index, 0)  # absent scores read entry 0, then are masked to 0
        self._global_index = np.array([index[name] for name in GLOBAL_ENTRIES])
        self._is_target = layout.target_mask.astype(np.float32)

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        """Tokens ``(..., K, len(TOKEN_FEATURES))`` of observations ``(..., D)``."""
        obs = np.asarray(observations, dtype=np.float32)
        if obs.shape[-1] != self.observation_size:
            raise ValueError(f"Observation has {obs.shape[-1]} entries, expected {self.observation_size}: it comes "
                             "from another env than the layout the agent was reset with; call reset(layout) "
                             "with this env's MixingLayout.")
        k = self.num_domains
        weights = obs[..., self._weight_index]
        log_relative = np.log(np.maximum(k * weights, MIN_RELATIVE_WEIGHT))
        scores = np.where(self._score_present, obs[..., self._score_index], 0.0)
        batch = weights.shape[:-1]
        is_target = np.broadcast_to(self._is_target, (*batch, k))
        present = np.broadcast_to(self._score_present.astype(np.float32), (*batch, k, len(DOMAIN_SCORE_KINDS)))
        target_share = (weights * self._is_target).sum(-1, keepdims=True)
        context = np.concatenate([obs[..., self._global_index], target_share], -1)
        tokens = np.concatenate([weights[..., None], log_relative[..., None], is_target[..., None], scores, present,
                                 np.broadcast_to(context[..., None, :], (*batch, k, context.shape[-1]))], -1)
        tokens = (tokens * self._mixture_mask).astype(np.float32)
        if self._descriptors is None:
            return tokens
        return np.concatenate([tokens, np.broadcast_to(self._descriptors, (*batch, *self._descriptors.shape))], -1)


# ------------------------------------------------------------------------------------------------
# Networks


class DomainSetEncoder(nn.Module):
    """A shared MLP per domain token, then self-attention across the tokens (no positional encoding).

    Maps ``(..., K, in_features)`` to ``(..., K, hidden_size)`` for any K; permuting the domains permutes
    the output the same way.

    Args:
        in_features: features per token.
        hidden_size: token width.
        num_heads: attention heads (must divide ``hidden_size``).
        num_layers: Transformer encoder layers.
    """

    def __init__(self, in_features: int, hidden_size: int, num_heads: int, num_layers: int):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} must be a multiple of num_heads {num_heads}.")
        self.embed = nn.Sequential(nn.Linear(in_features, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size))
        layer = nn.TransformerEncoderLayer(hidden_size, num_heads, dim_feedforward=2 * hidden_size, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.attention = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(hidden_size),
                                               enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # The attention layers take one batch dimension; CQL feeds several (Q heads, sampled actions).
        batch_shape, set_shape = tokens.shape[:-2], tokens.shape[-2:]
        encoded = self.attention(self.embed(tokens.reshape(-1, *set_shape)))
        return encoded.reshape(*batch_shape, *encoded.shape[-2:])


class DomainActor(nn.Module):
    """The policy network: per-domain ``(loc, scale)`` of a TanhNormal over the K logits in [-1, 1].

    Args:
        hidden_size: token width of the encoder.
        num_heads: attention heads.
        num_layers: attention layers.
        min_scale: the smallest standard deviation before the tanh (keeps log-likelihoods finite).
        in_features: features per token (``len(token_features(...))``).
    """

    def __init__(self, hidden_size: int = 32, num_heads: int = 4, num_layers: int = 2, min_scale: float = 1e-3,
                 in_features: int = len(TOKEN_FEATURES)):
        super().__init__()
        self.encoder = DomainSetEncoder(in_features, hidden_size, num_heads, num_layers)
        self.head = nn.Linear(hidden_size, 2)
        self.min_scale = min_scale

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.encoder(tokens))
        return out[..., 0], nn.functional.softplus(out[..., 1]) + self.min_scale


class DomainCritic(nn.Module):
    """One Q head: tokens that also hold the domain's action entry -> attention -> mean over domains -> Q.

    Each token gets its logit and the log of its resulting weight relative to uniform, ``log(K * w_k)``
    with ``w = softmax(action / temperature)``: the mixture the env will train on.

    Args:
        temperature: the softmax temperature of the logits.
        hidden_size: token width of the encoder.
        num_heads: attention heads.
        num_layers: attention layers.
        in_features: features per token, before the two of its action entry.
    """

    def __init__(self, temperature: float, hidden_size: int = 32, num_heads: int = 4, num_layers: int = 2,
                 in_features: int = len(TOKEN_FEATURES)):
        super().__init__()
        self.temperature = temperature
        self.encoder = DomainSetEncoder(in_features + 2, hidden_size, num_heads, num_layers)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, tokens: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        num_domains = action.shape[-1]
        log_relative = torch.log_softmax(action / self.temperature, -1) + math.log(num_domains)
        inputs = torch.cat([tokens, action.unsqueeze(-1), log_relative.unsqueeze(-1)], -1)
        return self.head(self.encoder(inputs).mean(-2))


class DomainValue(nn.Module):
    """AWR's state value: tokens -> attention -> mean over domains -> V(s).

    Args:
        hidden_size: token width of the encoder.
        num_heads: attention heads.
        num_layers: attention layers.
        in_features: features per token.
    """

    def __init__(self, hidden_size: int = 32, num_heads: int = 4, num_layers: int = 2,
                 in_features: int = len(TOKEN_FEATURES)):
        super().__init__()
        self.encoder = DomainSetEncoder(in_features, hidden_size, num_heads, num_layers)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens).mean(-2))


# ------------------------------------------------------------------------------------------------
# Training


@dataclass
class OfflineConfig:
    """Architecture and training hyperparameters of the offline Data Mixing Agent.

    Args:
        hidden_size: token width of actor and critic.
        num_heads: attention heads.
        num_layers: attention layers.
        batch_size: transitions per update.
        bc_steps: behaviour-cloning updates of the warm start.
        bc_top_fraction: the warm start imitates every step of the best episodes by return, this share of
            them (at least one): a step's reward alone says little, since it depends on the mixtures before it.
        bc_lr: learning rate of the warm start.
        cql_steps: CQL updates after the warm start.
        actor_lr: CQL actor learning rate.
        critic_lr: CQL critic learning rate.
        alpha_init: initial entropy coefficient (SAC's alpha, tuned towards the entropy target); below
            torchrl's 1.0 so that the entropy bonus does not undo the warm start in a short run.
        alpha_lr: entropy-coefficient learning rate.
        gamma: discount. 1.0: an episode's return is the objective at its end, and episodes are short and
            finite (the observation's ``progress`` tells the critic how many steps remain).
        tau: Polyak rate of the target Q heads.
        reward_scale: rewards are multiplied by it; objective changes are a few hundredths, small next to
            the entropy and CQL terms of the loss.
        cql_weight: weight of the conservative penalty (CQL's alpha, torchrl's ``min_q_weight``).
        cql_num_random: sampled actions per state and source (uniform, current and next policy) in the
            conservative penalty; each costs ``6 * batch_size`` critic passes over K tokens per update.
        target_entropy_per_domain: the entropy target is this times K.
        observe_mixture: whether the tokens read the mixture of the last step. Most collection policies hold
            their mixture from step to step, so an agent that reads it learns to copy it (a copycat policy) and
            starts from the reset mixture, the base model's, source only; without it the agent chooses from the
            scores and the progress alone.
        method: what follows the warm start: ``"cql"`` (the paper's), or ``"awr"``: advantage-weighted regression
            on every transition, its advantages the Monte-Carlo returns-to-go less a learned state value
            (:func:`awr_phase`); it has no entropy pull toward the uniform mixture and no critic of actions.
        action_encoding: how recorded logits are written (:data:`ACTION_ENCODINGS`): ``"max_one"`` as the env
            writes them, ``"centred"`` with the ignored common shift put at the cube's centre.
        standardise_rewards: centre the rewards and divide them by their standard deviation over the dataset's
            transitions before ``reward_scale`` multiplies them, so that Q's scale does not hang on the env's
            score units (the centring shifts every episode's return alike: episodes have one length).
        awr_steps: actor updates of AWR (``method="awr"``); the state value is fit first, as many updates.
        awr_beta: AWR's temperature on advantages divided by their standard deviation: a transition's weight is
            ``exp(advantage / (beta * std))``, clipped at ``awr_max_weight``.
        awr_max_weight: the largest weight of a transition in AWR.
        read_descriptors: whether the tokens read the domains' descriptors (:data:`DESCRIPTOR_FEATURES`): what the
            agent needs to tell apart the domains of a space it never saw; the trajectories' layouts and the env's
            must hold them.
    """

    hidden_size: int = 32
    num_heads: int = 4
    num_layers: int = 2
    batch_size: int = 32
    bc_steps: int = 300
    bc_top_fraction: float = 0.25
    bc_lr: float = 1e-3
    cql_steps: int = 1000
    actor_lr: float = 1e-4
    critic_lr: float = 3e-4
    alpha_init: float = 0.1
    alpha_lr: float = 1e-4
    gamma: float = 1.0
    tau: float = 0.005
    reward_scale: float = 10.0
    cql_weight: float = 1.0
    cql_num_random: int = 5
    target_entropy_per_domain: float = -1.0
    observe_mixture: bool = True
    method: str = "cql"
    action_encoding: str = "max_one"
    standardise_rewards: bool = False
    awr_steps: int = 1000
    awr_beta: float = 1.0
    awr_max_weight: float = 20.0
    read_descriptors: bool = False

    @property
    def token_features(self) -> tuple[str, ...]:
        """What each token of this agent holds (:func:`token_features`)."""
        return token_features(self.read_descriptors)

    def __post_init__(self) -> None:
        if self.method not in METHODS or self.action_encoding not in ACTION_ENCODINGS:
            raise ValueError(f"Unknown method {self.method!r} or action_encoding {self.action_encoding!r}: methods "
                             f"are {METHODS}, action encodings {ACTION_ENCODINGS}.")
        positive = ("hidden_size", "num_heads", "num_layers", "batch_size", "bc_lr", "actor_lr", "critic_lr",
                    "alpha_init", "alpha_lr", "reward_scale", "cql_num_random", "awr_beta", "awr_max_weight")
        bad = {name: getattr(self, name) for name in positive if getattr(self, name) <= 0}
        bad.update({name: getattr(self, name) for name in ("bc_steps", "cql_steps", "cql_weight", "awr_steps")
                    if getattr(self, name) < 0})
        if not 0 < self.bc_top_fraction <= 1:
            bad["bc_top_fraction"] = self.bc_top_fraction
        if not 0 <= self.gamma <= 1:
            bad["gamma"] = self.gamma
        if not 0 < self.tau <= 1:
            bad["tau"] = self.tau
        if bad:
            raise ValueError(f"Invalid OfflineConfig values {bad}: sizes, rates and scales must be positive, step "
                             "counts and cql_weight non-negative, bc_top_fraction and tau in (0, 1], gamma in [0, 1].")


#: The configs the agent registry and the studies name: ``"default"`` the paper's (behaviour cloning, then CQL);
#: ``"tuned"`` the knobs kept on validation seeds by ``experiments/offline_knobs_v1`` (its variant
#: ``awr_mixture``): standardised rewards, centred logits, AWR on Monte-Carlo returns in place of CQL.
NAMED_OFFLINE_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "tuned": {"standardise_rewards": True, "reward_scale": 1.0, "action_encoding": "centred", "method": "awr"},
    # The tuned knobs, and tokens that know a domain by its descriptors: the agent trained on several spaces to act on
    # unseen ones.
    "transfer": {"standardise_rewards": True, "reward_scale": 1.0, "action_encoding": "centred", "method": "awr",
                 "read_descriptors": True},
}


def named_offline_config(name: str) -> OfflineConfig:
    """The :class:`OfflineConfig` of :data:`NAMED_OFFLINE_CONFIGS` called ``name``; an unknown name lists the known.

    Args:
        name: ``"default"``, ``"tuned"`` or ``"transfer"``.
    """
    if name not in NAMED_OFFLINE_CONFIGS:
        raise KeyError(f"Unknown offline config {name!r}; known configs: {', '.join(NAMED_OFFLINE_CONFIGS)}.")
    return OfflineConfig(**NAMED_OFFLINE_CONFIGS[name])


def _policy_actions(dataset: TrajectoryDataset, actions: np.ndarray, encoding: str = "max_one") -> np.ndarray:
    """Recorded actions as logits at the dataset's temperature in ``encoding`` (:data:`ACTION_ENCODINGS`),
    strictly inside (-1, 1)."""
    layout = dataset.layout
    if layout.action_mode == "weights":
        actions = np.stack([weights_to_action(row, "logits", layout.temperature) for row in actions])
    actions = np.clip(actions, -1.0, 1.0)  # as the env reads them
    if encoding == "centred":
        actions = actions - (actions.max(axis=-1, keepdims=True) + actions.min(axis=-1, keepdims=True)) / 2
    return np.clip(actions, -1 + ACTION_MARGIN, 1 - ACTION_MARGIN).astype(np.float32)


def transitions(dataset: TrajectoryDataset, reward_scale: float = 1.0, observe_mixture: bool = True,
                action_encoding: str = "max_one", standardise_rewards: bool = False,
                read_descriptors: bool = False) -> TensorDict:
    """Every step of the dataset in torchrl's layout: ``tokens``, ``action``, ``episode``, ``return_to_go`` and
    ``("next", "tokens" | "reward" | "done" | "terminated")``, with rewards (standardised where
    ``standardise_rewards``, then times ``reward_scale``; ``return_to_go`` sums them undiscounted to the episode's
    end), actions written in ``action_encoding`` and tokens as :class:`DomainFeaturizer` makes them with
    ``observe_mixture`` and ``read_descriptors``."""
    if not dataset.episodes:
        raise ValueError("The trajectory dataset has no episodes; collect some first.")
    k = dataset.layout.num_domains
    bad = [i for i, ep in enumerate(dataset.episodes)
           if ep.actions.ndim != 2 or ep.actions.shape[1] != k or len(ep.observations) != len(ep.actions) + 1]
    if bad:
        raise ValueError(f"Episodes {bad} do not match the dataset's {k} domains (actions (T, {k}), observations "
                         "(T + 1, D)); the dataset is inconsistent.")
    featurize = DomainFeaturizer(dataset.layout, observe_mixture, read_descriptors)
    episodes = dataset.episodes
    tokens = featurize(np.concatenate([ep.observations[:-1] for ep in episodes]))
    next_tokens = featurize(np.concatenate([ep.observations[1:] for ep in episodes]))
    actions = _policy_actions(dataset, np.concatenate([ep.actions for ep in episodes]), action_encoding)
    rewards = np.concatenate([ep.rewards for ep in episodes])
    if standardise_rewards:
        rewards = (rewards - rewards.mean()) / max(float(rewards.std()), 1e-12)
    rewards = rewards * reward_scale
    ends = np.cumsum([ep.num_steps for ep in episodes])
    return_to_go = np.concatenate([np.cumsum(part[::-1])[::-1] for part in np.split(rewards, ends[:-1])])
    terminated = np.concatenate([ep.terminations for ep in episodes]).astype(bool)
    done = terminated | np.concatenate([ep.truncations for ep in episodes]).astype(bool)
    episode = np.concatenate([np.full(ep.num_steps, i) for i, ep in enumerate(episodes)])
    return TensorDict({
        "tokens": torch.from_numpy(tokens),
        "action": torch.from_numpy(actions),
        "episode": torch.from_numpy(episode),
        "return_to_go": torch.from_numpy(return_to_go.astype(np.float32)).unsqueeze(-1),
        "next": {
            "tokens": torch.from_numpy(next_tokens),
            "reward": torch.from_numpy(rewards.astype(np.float32)).unsqueeze(-1),
            "done": torch.from_numpy(done).unsqueeze(-1),
            "terminated": torch.from_numpy(terminated).unsqueeze(-1),
        },
    }, batch_size=[len(actions)])


def best_episodes(dataset: TrajectoryDataset, top_fraction: float) -> np.ndarray:
    """Indices of the ``top_fraction`` of episodes with the highest return (at least one; ties by order)."""
    returns = np.array([float(np.sum(ep.rewards)) for ep in dataset.episodes])
    count = max(1, math.ceil(top_fraction * len(returns)))
    return np.sort(np.argsort(-returns, kind="stable")[:count])


def behaviour_cloning_loss(actor: DomainActor, tokens: torch.Tensor, actions: torch.Tensor,
                           weights: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood of ``actions`` under the actor's TanhNormal, per domain and transition, each
    transition's weighted by ``weights`` (AWR's) where given."""
    loc, scale = actor(tokens)
    log_prob = TanhNormal(loc, scale).log_prob(actions)
    return -(log_prob if weights is None else log_prob * weights).mean() / actions.shape[-1]


def _cql_modules(actor: DomainActor, critic: DomainCritic) -> tuple[ProbabilisticActor, ValueOperator]:
    policy = ProbabilisticActor(TensorDictModule(actor, in_keys=["tokens"], out_keys=["loc", "scale"]),
                                in_keys=["loc", "scale"], distribution_class=TanhNormal)
    return policy, ValueOperator(critic, in_keys=["tokens", "action"])


def sample_batch(pools: list[TensorDict], batch_size: int, generator: torch.Generator) -> TensorDict:
    """A mini-batch of one space's transitions (``pools``, one per space): the space drawn in proportion to its
    transitions, then ``batch_size`` of them uniformly. With one space no space is drawn, so that an agent trained on
    one dataset gets the same batches it always got."""
    pool = pools[0]
    if len(pools) > 1:
        sizes = torch.tensor([len(p) for p in pools], dtype=torch.float64)
        pool = pools[int(torch.multinomial(sizes, 1, generator=generator))]
    return pool[torch.randint(len(pool), (batch_size,), generator=generator)]


def policy_target_share(actor: DomainActor, tokens: torch.Tensor, target_mask: np.ndarray,
                        temperature: float) -> float:
    """The mean target share of the actor's deterministic mixtures on the states ``tokens``: where a learner
    stands between the fields (a policy held at uniform has the space's own share)."""
    with torch.no_grad():
        loc, _ = actor(tokens)
        weights = torch.softmax(torch.tanh(loc) / temperature, dim=-1)
    return float(weights[..., torch.from_numpy(np.asarray(target_mask, dtype=bool))].sum(-1).mean())


def cql_phase(actor: DomainActor, data: TensorDict, config: OfflineConfig, layout: MixingLayout,
              generator: torch.Generator, log: list[dict[str, Any]], start: float, verbose: bool) -> None:
    """Conservative Q-learning on every transition of one space (the paper's phase); appends a row per update to
    ``log``."""
    critic = DomainCritic(layout.temperature, config.hidden_size, config.num_heads, config.num_layers,
                          len(config.token_features))
    policy, qvalue = _cql_modules(actor, critic)
    # deactivate_vmap: torch has no vmap rule for CPU attention; a loop over the two Q heads is faster.
    loss_module = CQLLoss(policy, qvalue, loss_function="l2", alpha_init=config.alpha_init,
                          min_q_weight=config.cql_weight,
                          num_random=config.cql_num_random, deactivate_vmap=True,
                          target_entropy=config.target_entropy_per_domain * layout.num_domains)
    loss_module.make_value_estimator(gamma=config.gamma)
    target_updater = SoftUpdate(loss_module, tau=config.tau)
    actor_optimizer = torch.optim.Adam(loss_module.actor_network_params.values(True, True), lr=config.actor_lr)
    critic_optimizer = torch.optim.Adam(loss_module.qvalue_network_params.values(True, True), lr=config.critic_lr)
    alpha_optimizer = torch.optim.Adam([loss_module.log_alpha], lr=config.alpha_lr)
    for step in range(config.cql_steps):
        batch = data[torch.randint(len(data), (config.batch_size,), generator=generator)]
        losses = loss_module(batch)
        # The three losses touch disjoint parameters (CQLLoss detaches the others), so one backward serves all.
        total = losses["loss_actor"] + losses["loss_qvalue"] + losses["loss_cql"] + losses["loss_alpha"]
        for optimizer in (actor_optimizer, critic_optimizer, alpha_optimizer):
            optimizer.zero_grad()
        total.backward()
        for optimizer in (actor_optimizer, critic_optimizer, alpha_optimizer):
            optimizer.step()
        target_updater.step()
        row = {key: losses[key].item() for key in ("loss_actor", "loss_qvalue", "loss_cql", "loss_alpha",
                                                   "alpha", "entropy")}
        log.append({"phase": "cql", "step": step, **row, "seconds": time.perf_counter() - start})
        if verbose and (step + 1) % 100 == 0:
            print(f"cql {step + 1}/{config.cql_steps}  " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()),
                  flush=True)


def awr_phase(actor: DomainActor, pools: list[TensorDict], config: OfflineConfig, generator: torch.Generator,
              log: list[dict[str, Any]], start: float, verbose: bool) -> None:
    """Advantage-weighted regression (Peng et al., 2019) with Monte-Carlo targets; appends a row per update to
    ``log``.

    Episodes are complete and short, so a transition's return-to-go is an exact sample of its Q: a state value V
    is fit to them (``critic_lr``), and the actor regresses on every recorded action weighted by
    ``exp(A / (beta * std(A)))``, ``A = G - V(s)``, clipped (at ``bc_lr``: it is a weighted warm start). Nothing
    pulls the policy toward the uniform mixture; it stays on the recorded actions, leaning to the better ones. With
    several spaces (``pools``) one value learns them all; the spread of the advantages is taken over all of them.
    """
    value = DomainValue(config.hidden_size, config.num_heads, config.num_layers, len(config.token_features))
    value_optimizer = torch.optim.Adam(value.parameters(), lr=config.critic_lr)
    for step in range(config.awr_steps):
        batch = sample_batch(pools, config.batch_size, generator)
        loss = nn.functional.mse_loss(value(batch["tokens"]), batch["return_to_go"])
        value_optimizer.zero_grad()
        loss.backward()
        value_optimizer.step()
        log.append({"phase": "value", "step": step, "loss_value": loss.item(), "seconds": time.perf_counter() - start})
    with torch.no_grad():
        advantages = [(pool["return_to_go"] - value(pool["tokens"])).squeeze(-1) for pool in pools]
    scale = config.awr_beta * torch.cat(advantages).std().clamp_min(1e-12)
    weighted = [pool.clone(recurse=False).set(AWR_WEIGHT, torch.exp(a / scale).clamp(max=config.awr_max_weight))
                for pool, a in zip(pools, advantages)]
    imitation_phase("awr", actor, weighted, config.awr_steps, config, generator, log, start, verbose)


#: The key of a transition's weight in the imitation loss (AWR's); a transition without one weighs 1.
AWR_WEIGHT = "awr_weight"


def imitation_phase(phase: str, actor: DomainActor, pools: list[TensorDict], steps: int, config: OfflineConfig,
                    generator: torch.Generator, log: list[dict[str, Any]], start: float, verbose: bool) -> None:
    """``steps`` updates of the actor toward the recorded actions of ``pools`` (one per space) at ``bc_lr``, each
    transition weighted by its :data:`AWR_WEIGHT` where the pools hold one; appends a row per update to ``log`` under
    ``phase``."""
    optimizer = torch.optim.Adam(actor.parameters(), lr=config.bc_lr)
    for step in range(steps):
        batch = sample_batch(pools, config.batch_size, generator)
        loss = behaviour_cloning_loss(actor, batch["tokens"], batch["action"], batch.get(AWR_WEIGHT, None))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        log.append({"phase": phase, "step": step, f"loss_{phase}": loss.item(), "seconds": time.perf_counter() - start})
        if verbose and (step + 1) % 100 == 0:
            print(f"{phase} {step + 1}/{steps}  loss {loss.item():.4f}", flush=True)


def train_offline_agent(
    dataset: TrajectoryDataset | str | Path | Sequence[TrajectoryDataset | str | Path],
    config: OfflineConfig | None = None,
    seed: int = 0,
    verbose: bool = False,
) -> tuple[DataMixingAgent, pd.DataFrame]:
    """Train the Data Mixing Agent on recorded trajectories: a behaviour-cloning warm start, then CQL (or AWR,
    ``config.method``).

    Args:
        dataset: a :class:`TrajectoryDataset`, or a path that ``load_trajectories`` reads; or a sequence of them,
            trajectories of several domain spaces (recorded at one softmax temperature), which the agent learns
            from together: each mini-batch is one space's, rewards are standardised and the warm start's best
            episodes chosen within each space (CQL learns from one space only; use ``method="awr"``).
        config: hyperparameters (default :class:`OfflineConfig`).
        seed: seeds the networks, the mini-batches and CQL's sampled actions; the same dataset and seed
            give the same weights. The caller's torch random state is left as it was.
        verbose: print the losses now and then.

    Returns:
        The agent, and the training log: one row per update with its ``phase`` (``"bc"``, ``"cql"``, or
        ``"value"`` and ``"awr"``), ``step``, the losses and ``seconds`` since the start; the last row of the warm
        start and of the last phase also holds the policy's mean ``target_share`` on the datasets' states
        (:func:`policy_target_share`).
    """
    datasets = [as_dataset(one) for one in (dataset if isinstance(dataset, (list, tuple)) else [dataset])]
    config = config or OfflineConfig()
    if config.method == "cql" and config.cql_steps and len(datasets) > 1:
        raise ValueError(f"CQL learns from one domain space, and {len(datasets)} datasets were given: train with "
                         "OfflineConfig(method='awr') (named_offline_config('transfer')), or on one dataset.")
    temperatures = {one.layout.temperature for one in datasets}
    if len(temperatures) > 1:
        raise ValueError(f"The datasets were recorded at softmax temperatures {sorted(temperatures)}; the agent's "
                         "logits mean one temperature: train on datasets of one.")
    pools = [transitions(one, config.reward_scale, config.observe_mixture, config.action_encoding,
                         config.standardise_rewards, config.read_descriptors) for one in datasets]
    best = [pool[torch.from_numpy(np.isin(pool["episode"].numpy(), best_episodes(one, config.bc_top_fraction)))]
            for one, pool in zip(datasets, pools)]
    log: list[dict[str, Any]] = []
    start = time.perf_counter()

    def log_target_share(phase: str) -> None:
        shares = [policy_target_share(actor, pool["tokens"], one.layout.target_mask, one.layout.temperature)
                  for one, pool in zip(datasets, pools)]
        share = float(np.average(shares, weights=[len(pool) for pool in pools]))
        log[-1]["target_share"] = share
        if verbose:
            print(f"{phase}: the policy's mean target share is {share:.3f}", flush=True)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        actor = DomainActor(config.hidden_size, config.num_heads, config.num_layers,
                            in_features=len(config.token_features))

        # Warm start: imitate the best episodes.
        imitation_phase("bc", actor, best, config.bc_steps, config, generator, log, start, verbose)
        if config.bc_steps:
            log_target_share("after the warm start")

        if config.method == "cql" and config.cql_steps:
            cql_phase(actor, pools[0], config, datasets[0].layout, generator, log, start, verbose)
            log_target_share("after CQL")
        if config.method == "awr" and config.awr_steps:
            awr_phase(actor, pools, config, generator, log, start, verbose)
            log_target_share("after AWR")
    recorded = [{"env_id": one.env_id, "env_kwargs": one.env_kwargs, "domain_names": list(one.layout.domain_names),
                 "episodes": len(one.episodes)} for one in datasets]
    trained_on = {**recorded[0], "seed": seed} if len(recorded) == 1 else {"datasets": recorded, "seed": seed}
    trained_on = json.loads(json.dumps(trained_on, default=str))  # saved as JSON: a preset object becomes its repr
    return DataMixingAgent(actor, config, datasets[0].layout.temperature, trained_on), pd.DataFrame(log)


# ------------------------------------------------------------------------------------------------
# The agent


class DataMixingAgent(Agent):
    """The trained offline agent: acts on any domain space with the mean action of its policy.

    Its actions are logits at ``temperature`` (the training data's); on an env with another
    temperature or in ``action_mode="weights"`` they are mapped to the same mixture.

    Args:
        actor: the trained :class:`DomainActor`.
        config: the :class:`OfflineConfig` it was trained with (its architecture is rebuilt from it).
        temperature: the softmax temperature its logits mean.
        trained_on: where it came from (env, domains, episodes, seed); saved with it, informational.
    """

    def __init__(self, actor: DomainActor, config: OfflineConfig, temperature: float,
                 trained_on: dict[str, Any] | None = None):
        self.actor = actor.eval()
        self.config = config
        self.temperature = float(temperature)
        self.trained_on = trained_on or {}
        self._featurize: DomainFeaturizer | None = None

    def reset(self, layout: MixingLayout) -> None:
        self._featurize = DomainFeaturizer(layout, self.config.observe_mixture, self.config.read_descriptors)
        super().reset(layout)

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        layout = self._layout()
        tokens = torch.from_numpy(self._featurize(observation))
        with torch.no_grad():
            loc, _ = self.actor(tokens)
        logits = torch.tanh(loc).numpy()  # the TanhNormal's deterministic action (low=-1, high=1)
        if layout.action_mode == "logits" and math.isclose(layout.temperature, self.temperature):
            return logits.astype(np.float32)
        return layout.weights_to_action(action_to_weights(logits, logits.shape, "logits", self.temperature))

    def save(self, path: str | Path) -> Path:
        """Write ``agent.safetensors`` (the actor's weights) and ``agent.json`` (config) into directory ``path``."""
        path = Path(path)
        weights = {name: tensor.detach().contiguous() for name, tensor in self.actor.state_dict().items()}
        atomic_write_bytes(path / WEIGHTS_FILE, save_safetensors(weights, metadata={"format": FORMAT}))
        atomic_write_json(path / CONFIG_FILE, {
            "format": FORMAT, "config": asdict(self.config), "temperature": self.temperature,
            "token_features": list(self.config.token_features), "trained_on": self.trained_on,
            "weights_sha256": sha256_file(path / WEIGHTS_FILE)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> DataMixingAgent:
        """Read an agent written by :meth:`save`; anything else raises a ``ValueError`` that says what it is not."""
        path = Path(path)
        config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
        if not (config_path.is_file() and weights_path.is_file()):
            raise ValueError(f"{path} is not a saved Data Mixing Agent: expected a directory with {CONFIG_FILE} and "
                             f"{WEIGHTS_FILE}, written by DataMixingAgent.save (`mixing-gym train-agent --algo dma`).")
        try:
            meta = json.loads(config_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{config_path} is not valid JSON ({error}); save the agent again.") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{config_path} does not describe a Data Mixing Agent (format {FORMAT!r} expected).")
        config = OfflineConfig(**meta["config"])
        if meta.get("token_features") != list(config.token_features):
            raise ValueError(f"The agent in {path} reads token features {meta.get('token_features')}, this version "
                             f"computes {list(config.token_features)}; retrain it with this version.")
        if sha256_file(weights_path) != meta.get("weights_sha256"):
            raise ValueError(f"{weights_path} does not match the checksum in {config_path} (corrupt or replaced); "
                             "save the agent again.")
        actor = DomainActor(config.hidden_size, config.num_heads, config.num_layers,
                            in_features=len(config.token_features))
        actor.load_state_dict(load_safetensors(weights_path.read_bytes()))
        return cls(actor, config, meta["temperature"], meta.get("trained_on"))
