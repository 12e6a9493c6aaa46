"""Helpers every agent shares: mixtures to actions, per-domain losses, preparing an env's cache.

The mixture and loss helpers use only what :class:`agents.base.EnvInfo` knows (the action mode and
temperature, the domain names), so they work for any domain space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mixing_gym.engine import prepare
from mixing_gym.envs.data_mixing import env_preset

if TYPE_CHECKING:
    from agents.base import EnvInfo

#: Prefix of the per-domain held-out language-modelling tasks (raw score: bits per byte).
BPB_PREFIX = "mg_bpb_"


def weights_to_action(weights: Sequence[float] | np.ndarray, env_info: EnvInfo) -> np.ndarray:
    """The action that makes the env train on ``weights`` (the inverse of its action mapping).

    In ``logits`` mode the env trains on ``softmax(clip(action, -1, 1) / temperature)``, so the action
    is ``temperature * log(w)`` shifted so that its largest entry is 1. Clipping to [-1, 1] bounds the
    ratio of the largest to the smallest weight the env can reach by ``e^(2 / temperature)`` (about
    3000 at the default 0.25): smaller weights, zeros included, come out as that floor. In ``weights``
    mode the action is the normalised weights themselves.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (env_info.num_domains,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"Expected {env_info.num_domains} finite non-negative weights with a positive sum "
                         f"(domains {list(env_info.domain_names)}), got {w.tolist()}.")
    w = w / w.sum()
    if env_info.action_mode == "weights":
        return w.astype(np.float32)
    with np.errstate(divide="ignore"):  # log(0) = -inf is clipped to the floor below, as intended
        logits = env_info.temperature * np.log(w)
    logits = logits - logits.max() + 1.0
    return np.clip(logits, -1.0, 1.0).astype(np.float32)


def domain_bpb(scores: Mapping[str, float], domain_names: Sequence[str]) -> np.ndarray:
    """Each domain's held-out bits per byte (``scores["mg_bpb_<domain>"]``), in domain order."""
    missing = [name for name in domain_names if BPB_PREFIX + name not in scores]
    if missing:
        raise KeyError(f"No held-out loss for domains {missing}: the scores lack {[BPB_PREFIX + n for n in missing]}; "
                       "loss-driven agents need the per-domain bits-per-byte benchmarks.")
    return np.array([scores[BPB_PREFIX + name] for name in domain_names], dtype=np.float64)


def prepare_for_env(env_kwargs: Mapping[str, Any], progress: bool = True) -> None:
    """Prepare the data and base checkpoint that ``gym.make("DataMixing-v0", **env_kwargs)`` will use.

    Call it once in the main process before starting subprocess workers, so that they find a complete
    cache instead of queueing on its lock.
    """
    preset = env_preset(env_kwargs.get("preset", "small"), env_kwargs.get("num_steps"),
                        env_kwargs.get("tokens_per_step"), env_kwargs.get("model"))
    space = env_kwargs.get("space") or env_kwargs.get("target_field", "math")
    prepare(space, preset, env_kwargs.get("cache_dir"), env_kwargs.get("data_config"), progress=progress)
