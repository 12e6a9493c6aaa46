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
    "DataMixingSurrogateV1Env": "mixing_gym.envs.surrogate",
    "DataMixingSurrogateV1VectorEnv": "mixing_gym.envs.surrogate",
    "DataMixingSurrogateV2Env": "mixing_gym.envs.surrogate",
    "DataMixingSurrogateV2VectorEnv": "mixing_gym.envs.surrogate",
}

__all__ = [*_ENVS, "prepare_env", "target_field_space_of"]


def _env_class(env_id: str):
    """The class ``gym.make(env_id)`` builds (with or without the ``mixing_gym:`` prefix)."""
    from gymnasium.envs.registration import load_env_creator

    import mixing_gym  # noqa: F401  (registers the envs)

    return load_env_creator(gym.spec(env_id.rpartition(":")[2]).entry_point)


def prepare_env(env_id: str, env_kwargs: dict, progress: bool = True):
    """Prepare the data and base checkpoint that ``gym.make(env_id, **env_kwargs)`` will use (a real env:
    ``DataMixing-v0`` or ``DataMixing-v1``, with or without the ``mixing_gym:`` prefix); returns the prepared
    data and the base checkpoint's path. Call it once before starting worker processes."""
    env_class = _env_class(env_id)
    if not hasattr(env_class, "prepare"):
        raise ValueError(f"{env_id} trains no proxy and has nothing to prepare; prepare_env takes DataMixing-v0 or "
                         "DataMixing-v1.")
    return env_class.prepare(env_kwargs, progress=progress)


def target_field_space_of(env_id: str, target_field: str):
    """The built-in domain space that ``gym.make(env_id, target_field=target_field)`` trains on (``code-v1`` for
    the code field of ``DataMixing-v1``, ``code`` for that of ``DataMixing-v0``); an error names the env's fields.

    Args:
        env_id: a real env, ``DataMixing-v0`` or ``DataMixing-v1``, with or without the ``mixing_gym:`` prefix.
        target_field: the field (``"math"``, ``"code"``).
    """
    env_class = _env_class(env_id)
    if not hasattr(env_class, "space_of"):
        raise ValueError(f"{env_id} trains no proxy and has no target fields; DataMixing-v0 and DataMixing-v1 do.")
    return env_class.space_of(target_field)


def __getattr__(name: str):
    if name in _ENVS:
        return getattr(importlib.import_module(_ENVS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
