"""The MDP every mixing env shares: the action mapping, the observation layout and the reward objective.

``DataMixing-v0`` (a real proxy run per step) and ``DataMixingSurrogate-v0`` (learned dynamics) build
their spaces and read their actions with these functions, so an agent sees the same MDP in both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from gymnasium import spaces

from mixing_gym.evaluation import OBJECTIVES

ScoreObjective = Callable[[float, float], float]
ACTION_MODES = ("logits", "weights")
#: Bounds of every relative score in the observation (benchmark improvements and field aggregates).
RELATIVE_BOUNDS = (-1.0, 10.0)


def check_action_mode(action_mode: str, temperature: float) -> None:
    """Raise a ``ValueError`` naming the fix for an unknown action mode or a non-positive temperature."""
    if action_mode not in ACTION_MODES:
        raise ValueError(f"Unknown action_mode {action_mode!r}; use one of {ACTION_MODES}.")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")


def score_objective(reward: str | ScoreObjective, reward_coef: float = 0.5) -> ScoreObjective:
    """The objective ``J(s, t)`` whose change is the reward: a name of ``OBJECTIVES`` or a callable."""
    if callable(reward):
        return reward
    if reward not in OBJECTIVES:
        raise ValueError(f"Unknown reward {reward!r}; use one of {sorted(OBJECTIVES)} or a callable J(s, t).")
    named = OBJECTIVES[reward]
    return lambda source, target: named(source, target, reward_coef)


def reward_name(reward: str | ScoreObjective) -> str:
    """How an env reports its reward: the objective's name, or the callable's ``__name__``."""
    return reward if isinstance(reward, str) else getattr(reward, "__name__", "custom")


def observation_names(domain_names: Sequence[str], benchmark_names: Sequence[str]) -> list[str]:
    """The observation entries: ``weight/<domain>``, ``score/<task>``, the two field aggregates, ``progress``."""
    return ([f"weight/{n}" for n in domain_names] + [f"score/{n}" for n in benchmark_names]
            + ["score/source", "score/target", "progress"])


def observation_space(num_domains: int, num_benchmarks: int) -> spaces.Box:
    """The float32 ``Box`` of :func:`observation_names`: weights in [0, 1], scores in ``RELATIVE_BOUNDS``."""
    k, b = num_domains, num_benchmarks
    low = np.concatenate([np.zeros(k), np.full(b + 2, RELATIVE_BOUNDS[0]), [0.0]]).astype(np.float32)
    high = np.concatenate([np.ones(k), np.full(b + 2, RELATIVE_BOUNDS[1]), [1.0]]).astype(np.float32)
    return spaces.Box(low, high, dtype=np.float32)


def action_space(num_domains: int, action_mode: str) -> spaces.Box:
    """``Box(-1, 1, (K,))`` of logits, or ``Box(0, 1, (K,))`` of weights."""
    return spaces.Box(-1.0 if action_mode == "logits" else 0.0, 1.0, (num_domains,), dtype=np.float32)


def action_to_weights(action: np.ndarray, shape: tuple[int, ...], action_mode: str, temperature: float) -> np.ndarray:
    """Validate an action of ``shape`` (``(K,)``, or ``(N, K)`` for N envs at once) and map each row of K
    entries to mixture weights: ``softmax(clip(action, -1, 1) / temperature)`` for logits, ``action / sum``
    for weights."""
    array = np.asarray(action)
    if array.shape != shape:
        raise ValueError(f"Action has shape {array.shape}; this env has {shape[-1]} domains, so pass "
                         f"an array of shape {shape} (see env.unwrapped.domain_names).")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"Action has dtype {array.dtype}; pass real numbers (float32).")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Action {array.tolist()} contains NaN or infinite values; pass finite numbers.")
    if action_mode == "logits":
        logits = np.clip(array, -1.0, 1.0) / temperature
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)
    if np.any(array < 0):
        raise ValueError(f"Weights {array.tolist()} are negative; in action_mode='weights' pass values >= 0.")
    totals = array.sum(axis=-1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError("All weights are zero; in action_mode='weights' give at least one domain a weight > 0.")
    return array / totals
