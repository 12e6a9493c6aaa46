"""The agent interface and the one episode loop every consumer uses (the harness, the collector, RegMix).

An agent sees an env through its :class:`~mixing_gym.layout.MixingLayout` (``reset(layout)``), so one
agent serves envs of any domain space, real or surrogate. :func:`play_episode` plays one episode and
returns a :class:`PlayedEpisode`, which gives the harness's JSON record and the collector's
:class:`~mixing_gym.trajectories.Trajectory` from the same steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from mixing_gym.layout import MixingLayout
from mixing_gym.mdp import SOURCE_SCORE, TARGET_SCORE, balanced_objective
from mixing_gym.trajectories import Trajectory


class Agent:
    """Base class of the agents: maps an observation (and the env's ``info``) to the next action.

    Subclasses implement :meth:`act`; :meth:`reset` is called at the start of every episode with the
    env's :class:`~mixing_gym.layout.MixingLayout` (stored as ``self.layout``), so one agent serves envs
    of any domain space. Agents that learn from the env before acting override :meth:`learn`.
    """

    layout: MixingLayout | None = None

    def reset(self, layout: MixingLayout) -> None:
        self.layout = layout

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        """The next action, in the env's action space."""
        raise NotImplementedError

    def learn(self, env: gym.Env, **kwargs: Any) -> Agent:
        """Train on ``env`` before acting; agents with nothing to learn return themselves unchanged."""
        return self

    def _layout(self) -> MixingLayout:
        if self.layout is None:
            raise RuntimeError(f"{type(self).__name__}.reset(layout) must be called before act().")
        return self.layout


class MixtureAgent(Agent):
    """An agent that decides mixture weights; :meth:`act` turns them into the env's action.

    Subclasses implement :meth:`mixture` (K non-negative weights; normalised here).
    """

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        raise NotImplementedError

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self._layout().weights_to_action(self.mixture(observation, info))


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

    def reset(self, layout: MixingLayout) -> None:
        expected = ((layout.num_domains,), (len(layout.observation_names),))
        found = (self.model.action_space.shape, self.model.observation_space.shape)
        if found != expected:
            raise ValueError(f"The model was trained on actions and observations of shapes {found}, this env has "
                             f"{expected} (domains {list(layout.domain_names)}); a policy is tied to its domain "
                             "space and benchmarks.")
        super().reset(layout)

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        action, _ = self.model.predict(observation, deterministic=True)
        return np.asarray(action, dtype=np.float32)


@dataclass
class PlayedEpisode:
    """One episode as it was played.

    Args:
        seed: the ``env.reset(seed=...)`` of the episode.
        layout: the env's layout.
        observations: the reset observation, then one per step.
        actions: the actions as passed to ``env.step``.
        rewards: the reward of every step.
        terminations: whether each step terminated the episode.
        truncations: whether each step truncated it.
        infos: the ``info`` of every step (not the reset's).
    """

    seed: int
    layout: MixingLayout
    observations: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminations: list[bool] = field(default_factory=list)
    truncations: list[bool] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)

    def trajectory(self, policy: str = "") -> Trajectory:
        """The episode as a :class:`~mixing_gym.trajectories.Trajectory`, to record in a dataset."""
        return Trajectory(np.array(self.observations, dtype=np.float32), np.array(self.actions, dtype=np.float32),
                          np.array(self.rewards, dtype=np.float64), np.array(self.terminations, dtype=bool),
                          np.array(self.truncations, dtype=bool), self.seed, policy)

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary: per step the action, the mixture trained on, the scores, the source and
        target aggregates, the reward and the objective; then the final aggregates, the return and the
        final balanced score (under any reward, so that agents trained for other objectives compare)."""
        steps = [{
            "action": np.asarray(action, dtype=float).tolist(),
            "mixture": np.asarray(info["mixture"], dtype=float).tolist(),
            "scores": {k: float(v) for k, v in info["scores"].items()},
            "source": float(info[SOURCE_SCORE]),
            "target": float(info[TARGET_SCORE]),
            "reward": float(reward),
            "objective": float(info["objective"]),
        } for action, reward, info in zip(self.actions, self.rewards, self.infos)]
        final = steps[-1]
        return {
            "seed": self.seed,
            "domain_names": list(self.layout.domain_names),
            "domain_fields": list(self.layout.domain_fields),
            "steps": steps,
            "return": float(sum(step["reward"] for step in steps)),
            "objective": final["objective"],
            "source": final["source"],
            "target": final["target"],
            "balanced": balanced_objective(final["scores"]),
        }


def target_share(record: dict[str, Any]) -> float:
    """The share of a played episode's tokens (a :meth:`PlayedEpisode.record`) drawn from target-field domains,
    the mean over its steps (which are of equal size)."""
    target = np.asarray(record["domain_fields"]) == "target"
    return float(np.mean([np.asarray(step["mixture"])[target].sum() for step in record["steps"]]))


def play_episode(agent: Agent, env: gym.Env, seed: int, max_steps: int | None = None) -> PlayedEpisode:
    """Play one episode of ``agent`` on ``env`` from ``env.reset(seed=seed)``.

    ``max_steps`` stops the episode early (a shorter proxy run, as RegMix's proxies use).
    """
    layout = MixingLayout.of(env)
    agent.reset(layout)
    observation, info = env.reset(seed=seed)
    episode = PlayedEpisode(seed, layout, [observation])
    done = False
    while not done and (max_steps is None or len(episode.actions) < max_steps):
        action = np.asarray(agent.act(observation, info), dtype=np.float32)
        observation, reward, terminated, truncated, info = env.step(action)
        episode.observations.append(observation)
        episode.actions.append(action)
        episode.rewards.append(float(reward))
        episode.terminations.append(bool(terminated))
        episode.truncations.append(bool(truncated))
        episode.infos.append(info)
        done = terminated or truncated
    return episode
