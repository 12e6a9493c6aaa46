"""Recorded data mixing trajectories: the episodes offline agents and the surrogate env learn from.

A :class:`TrajectoryDataset` holds finished ``DataMixing-v0`` episodes together with what is needed to
read them without the env: the env arguments, the domain space (names and fields), the benchmarks, the
observation layout and the base model's scores.

CONTRACT (filled in by the collection work): the dataclasses below are the in-memory form every
consumer uses (surrogate env, offline agent); storage functions read and write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
        env_id: the registered id the episodes ran on (``"DataMixing-v0"``).
        env_kwargs: the JSON-serialisable ``gym.make`` keyword arguments.
        domain_names: the K domains, in action order.
        domain_fields: ``"source"`` or ``"target"`` per domain.
        benchmark_names: the B benchmarks, in observation order.
        observation_names: the D observation entries (``weight/<domain>``, ``score/<task>``, ...).
        base_scores: the base model's raw scores, the reference of every improvement.
        num_steps: steps per episode.
        action_mode: ``"logits"`` or ``"weights"``.
        temperature: the logits' softmax temperature.
        episodes: the recorded episodes.
    """

    env_id: str
    env_kwargs: dict[str, Any]
    domain_names: tuple[str, ...]
    domain_fields: tuple[str, ...]
    benchmark_names: tuple[str, ...]
    observation_names: tuple[str, ...]
    base_scores: dict[str, float]
    num_steps: int
    action_mode: str = "logits"
    temperature: float = 0.25
    episodes: list[Trajectory] = field(default_factory=list)
