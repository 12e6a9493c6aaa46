"""Gymnasium environments of mixing-gym.

The classes load on first access: the surrogate env needs neither torch nor lm-eval, which the real
env imports (several seconds).
"""

from __future__ import annotations

import importlib

import gymnasium as gym

_ENVS = {
    "DataMixingEnv": "mixing_gym.envs.data_mixing",
    "DataMixingV1Env": "mixing_gym.envs.data_mixing_v1",
    "DataMixingSurrogateEnv": "mixing_gym.envs.surrogate",
    "DataMixingSurrogateVectorEnv": "mixing_gym.envs.surrogate",
}

__all__ = [*_ENVS, "prepare_env"]


def prepare_env(env_id: str, env_kwargs: dict, progress: bool = True):
    """Prepare the data and base checkpoint that ``gym.make(env_id, **env_kwargs)`` will use (a real env:
    ``DataMixing-v0`` or ``DataMixing-v1``, with or without the ``mixing_gym:`` prefix); returns the prepared
    data and the base checkpoint's path. Call it once before starting worker processes."""
    from gymnasium.envs.registration import load_env_creator

    import mixing_gym  # noqa: F401  (registers the envs)

    env_class = load_env_creator(gym.spec(env_id.rpartition(":")[2]).entry_point)
    if not hasattr(env_class, "prepare"):
        raise ValueError(f"{env_id} trains no proxy and has nothing to prepare; prepare_env takes DataMixing-v0 or "
                         "DataMixing-v1.")
    return env_class.prepare(env_kwargs, progress=progress)


def __getattr__(name: str):
    if name in _ENVS:
        return getattr(importlib.import_module(_ENVS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
