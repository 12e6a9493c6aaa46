"""The agent interface: what an agent knows of an env (:class:`EnvInfo`), how it acts, and the episode loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.common import weights_to_action
from mixing_gym.domains import field_mixture
from mixing_gym.evaluation import SOURCE_SCORE, TARGET_SCORE, balanced_objective

if TYPE_CHECKING:
    from mixing_gym.trajectories import TrajectoryDataset


@dataclass(frozen=True)
class EnvInfo:
    """The facts about a ``DataMixing-v0`` env an agent may use; nothing in it is specific to a domain space.

    Args:
        domain_names: the K domains, in action order.
        domain_fields: ``"source"`` or ``"target"`` for each domain.
        num_steps: re-weighting steps per episode.
        action_mode: ``"logits"`` (``softmax(action / temperature)``) or ``"weights"``.
        temperature: the softmax temperature of the logits mode.
        observation_names: what each observation entry is (``weight/<domain>``, ``score/<task>``, ...).
        benchmark_names: the lm-eval tasks scored after every step.
        base_scores: the base model's scores (``env.unwrapped.base_scores``), the reference of every improvement.
    """

    domain_names: tuple[str, ...]
    domain_fields: tuple[str, ...]
    num_steps: int
    action_mode: str = "logits"
    temperature: float = 0.25
    observation_names: tuple[str, ...] = ()
    benchmark_names: tuple[str, ...] = ()
    base_scores: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: gym.Env) -> EnvInfo:
        env = env.unwrapped
        return cls(tuple(env.domain_names), tuple(env.domain_fields), int(env.num_steps), env.action_mode,
                   float(env.temperature), tuple(env.observation_names), tuple(env.benchmark_names),
                   dict(env.base_scores))

    @classmethod
    def from_dataset(cls, dataset: TrajectoryDataset) -> EnvInfo:
        """The facts of the env a :class:`~mixing_gym.trajectories.TrajectoryDataset` was recorded on."""
        return cls(tuple(dataset.domain_names), tuple(dataset.domain_fields), int(dataset.num_steps),
                   dataset.action_mode, float(dataset.temperature), tuple(dataset.observation_names),
                   tuple(dataset.benchmark_names), dict(dataset.base_scores))

    @property
    def num_domains(self) -> int:
        return len(self.domain_names)

    @property
    def target_mask(self) -> np.ndarray:
        return np.array([f == "target" for f in self.domain_fields])

    @property
    def action_space(self) -> spaces.Box:
        """The env's action space, rebuilt from the action mode."""
        low = -1.0 if self.action_mode == "logits" else 0.0
        return spaces.Box(low, 1.0, (self.num_domains,), dtype=np.float32)

    def field_mixture(self, target_share: float) -> np.ndarray:
        """Uniform within each field, ``target_share`` of the tokens on the target field."""
        return field_mixture(self.target_mask, target_share)

    def step_index(self, observation: np.ndarray) -> int:
        """Steps taken so far in the episode, read from the observation's ``progress`` entry."""
        progress = float(observation[self.observation_names.index("progress")])
        return round(progress * self.num_steps)


class Agent:
    """Base class of the agents: maps an observation (and the env's ``info``) to the next action.

    Subclasses implement :meth:`act`; :meth:`reset` is called at the start of every episode with the
    env's :class:`EnvInfo` (stored as ``self.env_info``), so one agent serves envs of any domain space.
    Agents that learn from the env before acting override :meth:`learn`.
    """

    env_info: EnvInfo | None = None

    def reset(self, env_info: EnvInfo) -> None:
        self.env_info = env_info

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        """The next action, in the env's action space."""
        raise NotImplementedError

    def learn(self, env: gym.Env, **kwargs: Any) -> Agent:
        """Train on ``env`` before acting; agents with nothing to learn return themselves unchanged."""
        return self

    def _info(self) -> EnvInfo:
        if self.env_info is None:
            raise RuntimeError(f"{type(self).__name__}.reset(env_info) must be called before act().")
        return self.env_info


class MixtureAgent(Agent):
    """An agent that decides mixture weights; :meth:`act` turns them into the env's action.

    Subclasses implement :meth:`mixture` (K non-negative weights; normalised here).
    """

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        raise NotImplementedError

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return weights_to_action(self.mixture(observation, info), self._info())


class FunctionAgent(Agent):
    """An agent from a plain function.

    Args:
        fn: ``fn(observation, info) -> action`` in the env's action space.
    """

    def __init__(self, fn: Callable[[np.ndarray, dict], np.ndarray]):
        self.fn = fn

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return np.asarray(self.fn(observation, info), dtype=np.float32)


class SB3Agent(Agent):
    """An agent from any Stable-Baselines3 model, acting deterministically.

    Args:
        model: a trained Stable-Baselines3 model (anything with ``predict(observation, deterministic=True)``).
    """

    def __init__(self, model: Any):
        self.model = model

    def reset(self, env_info: EnvInfo) -> None:
        expected = ((env_info.num_domains,), (len(env_info.observation_names),))
        found = (self.model.action_space.shape, self.model.observation_space.shape)
        if found != expected:
            raise ValueError(f"The model was trained on actions and observations of shapes {found}, this env has "
                             f"{expected} (domains {list(env_info.domain_names)}); a policy is tied to its domain "
                             "space and benchmarks.")
        super().reset(env_info)

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        action, _ = self.model.predict(observation, deterministic=True)
        return np.asarray(action, dtype=np.float32)


def run_episode(agent: Agent, env: gym.Env, seed: int, env_info: EnvInfo | None = None,
                max_steps: int | None = None) -> dict[str, Any]:
    """Play one episode of ``agent`` on ``env`` from ``env.reset(seed=seed)``; returns a JSON-ready record.

    The record holds, per step, the action, the mixture trained on, the scores, the source and target
    aggregates (improvements over the base model), the reward and the objective; and the final
    aggregates, the episode's return and its final balanced score. ``max_steps`` stops the episode
    early (a shorter proxy run).
    """
    env_info = env_info or EnvInfo.from_env(env)
    agent.reset(env_info)
    observation, info = env.reset(seed=seed)
    steps: list[dict[str, Any]] = []
    done = False
    while not done and (max_steps is None or len(steps) < max_steps):
        action = agent.act(observation, info)
        observation, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        steps.append({
            "action": np.asarray(action, dtype=float).tolist(),
            "mixture": np.asarray(info["mixture"], dtype=float).tolist(),
            "scores": {k: float(v) for k, v in info["scores"].items()},
            "source": float(info[SOURCE_SCORE]),
            "target": float(info[TARGET_SCORE]),
            "reward": float(reward),
            "objective": float(info["objective"]),
        })
    final = steps[-1]
    return {
        "seed": seed,
        "domain_names": list(env_info.domain_names),
        "domain_fields": list(env_info.domain_fields),
        "steps": steps,
        "return": float(sum(step["reward"] for step in steps)),
        "objective": final["objective"],
        "source": final["source"],
        "target": final["target"],
        # Under any reward, so that agents trained for other objectives stay comparable.
        "balanced": balanced_objective(final["scores"]),
    }
