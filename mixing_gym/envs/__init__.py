"""Gymnasium environments of mixing-gym.

The classes load on first access: the surrogate env needs neither torch nor lm-eval, which the real
env imports (several seconds).
"""

from __future__ import annotations

import importlib

_ENVS = {
    "DataMixingEnv": "mixing_gym.envs.data_mixing",
    "DataMixingV1Env": "mixing_gym.envs.data_mixing_v1",
    "DataMixingSurrogateEnv": "mixing_gym.envs.surrogate",
    "DataMixingSurrogateVectorEnv": "mixing_gym.envs.surrogate",
}

__all__ = list(_ENVS)


def __getattr__(name: str):
    if name in _ENVS:
        return getattr(importlib.import_module(_ENVS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
