"""The MDP every mixing env shares: spaces, the action mapping both ways, score keys and reward objectives.

The real envs (``DataMixing-v1``, v0: a real proxy run per step), the surrogate envs (learned dynamics) and every
agent read actions, observations and rewards through these functions, so all of them see one MDP. The module
needs numpy and Gymnasium only: no torch, no lm-eval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from gymnasium import spaces

#: Keys of the source-field and target-field aggregates in a flat score dict (``info["scores"]``).
SOURCE_SCORE = "source_score"
TARGET_SCORE = "target_score"

ScoreObjective = Callable[[float, float], float]
#: Objectives J(s, t) of the relative source and target aggregates; the envs reward their change.
OBJECTIVES: dict[str, Callable[[float, float, float], float]] = {
    "balanced": lambda source, target, coef: 0.5 * (source + target),
    "target": lambda source, target, coef: target,
    "source": lambda source, target, coef: source,
    "weighted": lambda source, target, coef: coef * target + (1.0 - coef) * source,
    "min": lambda source, target, coef: np.minimum(source, target),  # numpy: arrays of N envs too
}

ACTION_MODES = ("logits", "weights")
#: Bounds of every relative score in the observation (benchmark improvements and field aggregates).
RELATIVE_BOUNDS = (-1.0, 10.0)
#: Most epochs of a domain's unique tokens the observation reports (finite target data; the bound of its Box).
MAX_EPOCHS = 100.0


def balanced_objective(scores: dict[str, float]) -> float:
    """``(source_score + target_score) / 2`` of a flat score dict: target gains count as much as forgetting."""
    return OBJECTIVES["balanced"](scores[SOURCE_SCORE], scores[TARGET_SCORE], 0.5)


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


def check_action_mode(action_mode: str, temperature: float) -> None:
    """Raise a ``ValueError`` naming the fix for an unknown action mode or a non-positive temperature."""
    if action_mode not in ACTION_MODES:
        raise ValueError(f"Unknown action_mode {action_mode!r}; use one of {ACTION_MODES}.")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")


def observation_names(domain_names: Sequence[str], benchmark_names: Sequence[str], epochs: bool = False) -> list[str]:
    """The observation entries: ``weight/<domain>``, ``score/<task>``, the two field aggregates, ``progress``,
    then (``epochs``) ``epochs/<domain>``, how many times each domain's unique tokens were trained on."""
    return ([f"weight/{n}" for n in domain_names] + [f"score/{n}" for n in benchmark_names]
            + ["score/source", "score/target", "progress"] + ([f"epochs/{n}" for n in domain_names] if epochs else []))


def observation_space(num_domains: int, num_benchmarks: int, epochs: bool = False) -> spaces.Box:
    """The float32 ``Box`` of :func:`observation_names`: weights in [0, 1], scores in ``RELATIVE_BOUNDS``,
    progress in [0, 1], epochs in [0, ``MAX_EPOCHS``]."""
    k, b = num_domains, num_benchmarks
    extra_low, extra_high = (np.zeros(k), np.full(k, MAX_EPOCHS)) if epochs else (np.zeros(0), np.zeros(0))
    low = np.concatenate([np.zeros(k), np.full(b + 2, RELATIVE_BOUNDS[0]), [0.0], extra_low]).astype(np.float32)
    high = np.concatenate([np.ones(k), np.full(b + 2, RELATIVE_BOUNDS[1]), [1.0], extra_high]).astype(np.float32)
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
    if array.dtype.kind not in "iuf":  # signed, unsigned, floating: real numbers (np.issubdtype costs more)
        raise ValueError(f"Action has dtype {array.dtype}; pass real numbers (float32).")
    array = array.astype(np.float64)  # a copy: the steps below work in place on it
    if not np.isfinite(array).all():
        raise ValueError(f"Action contains NaN or infinite values ({_where(~np.isfinite(array), array)}); pass "
                         "finite numbers.")
    if action_mode == "logits":  # softmax(clip(action, -1, 1) / temperature), without temporaries
        np.maximum(array, -1.0, out=array)
        np.minimum(array, 1.0, out=array)
        array /= temperature
        array -= array.max(axis=-1, keepdims=True)
        np.exp(array, out=array)
        array /= array.sum(axis=-1, keepdims=True)
        return array
    if np.any(array < 0):
        raise ValueError(f"Weights are negative ({_where(array < 0, array)}); in action_mode='weights' pass values "
                         ">= 0.")
    totals = array.sum(axis=-1, keepdims=True)
    if np.any(totals <= 0):
        empty = np.flatnonzero(totals[..., 0] <= 0)
        rows = "" if array.ndim == 1 else f" in {len(empty)} env(s), the first {empty[:3].tolist()}"
        raise ValueError(f"All weights are zero{rows}; in action_mode='weights' give at least one domain a "
                         "weight > 0.")
    return array / totals


def _where(bad: np.ndarray, values: np.ndarray, shown: int = 3) -> str:
    """Where the ``bad`` entries of an action are, in a message of bounded length: ``domain 2 = nan`` for one
    env, ``env 7, domain 2 = nan`` for a batch, the first ``shown`` of them and how many there are."""
    places = np.argwhere(bad)
    described = [(f"env {place[0]}, " if len(place) == 2 else "") + f"domain {place[-1]} = {values[tuple(place)]}"
                 for place in places[:shown]]
    more = f" and {len(places) - shown} more" if len(places) > shown else ""
    return "; ".join(described) + more


def weights_to_action(weights: Sequence[float] | np.ndarray, action_mode: str, temperature: float) -> np.ndarray:
    """The action that makes an env train on ``weights`` (the inverse of :func:`action_to_weights`).

    In ``logits`` mode the env trains on ``softmax(clip(action, -1, 1) / temperature)``, so the action
    is ``temperature * log(w)`` shifted so that its largest entry is 1. Clipping to [-1, 1] bounds the
    ratio of the largest to the smallest weight the env can reach by ``e^(2 / temperature)`` (about
    3000 at the default 0.25): smaller weights, zeros included, come out as that floor. In ``weights``
    mode the action is the normalised weights themselves.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"Expected finite non-negative weights with a positive sum, one per domain, got {w.tolist()}.")
    w = w / w.sum()
    if action_mode == "weights":
        return w.astype(np.float32)
    with np.errstate(divide="ignore"):  # log(0) = -inf is clipped to the floor below, as intended
        logits = temperature * np.log(w)
    logits = logits - logits.max() + 1.0
    return np.clip(logits, -1.0, 1.0).astype(np.float32)
