"""Agents by name, for the command line and the harness: ``AGENTS[name](**kwargs) -> Agent``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agents.base import Agent
from agents.baselines import (
    DoReMi,
    FixedRatio,
    LinearSchedule,
    OnlineDataMixing,
    RandomAgent,
    RegMix,
    SourceOnly,
    TargetOnly,
    Uniform,
)
from agents.planner import SurrogatePlanner
from agents.search import MixtureSearch


def load_ppo(path: str | Path) -> Agent:
    """A PPO policy saved by :func:`agents.ppo.train_ppo` (Stable-Baselines3 is imported only when needed)."""
    from agents.ppo import PPOAgent

    return PPOAgent.load(path)


def load_dma(path: str | Path) -> Agent:
    """An offline Data Mixing Agent saved by :meth:`agents.offline.DataMixingAgent.save` (torchrl loads only when
    needed)."""
    from agents.offline import DataMixingAgent

    return DataMixingAgent.load(path)


def plan_on_surrogate(path: str | Path, seed: int = 0) -> Agent:
    """A :class:`~agents.planner.SurrogatePlanner` with its plan made on the surrogate saved at ``path``."""
    return SurrogatePlanner(path, seed=seed).learn()


AGENTS: dict[str, Callable[..., Agent]] = {
    "random": RandomAgent,
    "uniform": Uniform,
    "source_only": SourceOnly,
    "target_only": TargetOnly,
    "fixed_ratio": FixedRatio,
    "linear_schedule": LinearSchedule,
    "regmix": RegMix,
    "search": MixtureSearch,
    "odm": OnlineDataMixing,
    "doremi": DoReMi,
    "ppo": load_ppo,
    "dma": load_dma,
    "planner": plan_on_surrogate,
}

#: Agents that need learning or a saved model before they act.
NEEDS_TRAINING = ("regmix", "search", "ppo", "dma", "planner")
