"""A Gymnasium vector env as a Stable-Baselines3 ``VecEnv``, so SB3 trains on one numpy call per step.

SB3 steps its own ``DummyVecEnv`` / ``SubprocVecEnv``, one Python env per slot. ``gym.make_vec`` on a vector
entry point (``DataMixingSurrogate-v1``'s) steps all N envs in one call, tens of times faster; this adapter lets
SB3 drive it. SB3 resets an ended episode in the step that ends it and passes the last observation as
``infos[i]["terminal_observation"]``: Gymnasium's same-step autoreset, which the wrapped env must use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn


def make_sb3_vector_env(env_id: str, num_envs: int, seed: int, **env_kwargs: Any) -> VectorEnvAdapter:
    """``gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", autoreset_mode=SAME_STEP, ...)``
    for SB3, its env ``i`` first reset with ``seed + i``."""
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs)
    adapter = VectorEnvAdapter(env)
    adapter.seed(seed)
    return adapter


class VectorEnvAdapter(VecEnv):
    """SB3's ``VecEnv`` interface over a Gymnasium ``VectorEnv`` with same-step autoreset.

    Args:
        env: the vector env; its ``metadata["autoreset_mode"]`` must be ``AutoresetMode.SAME_STEP``, and its
            ``infos`` arrays with ``_key`` masks (Gymnasium's format) become SB3's list of per-env dicts.
    """

    def __init__(self, env: gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode is not AutoresetMode.SAME_STEP:
            raise ValueError(f"SB3 resets an episode in the step that ends it; make the env with "
                             f"autoreset_mode=AutoresetMode.SAME_STEP (it has {mode}).")
        self.env = env
        self._actions: np.ndarray | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def reset(self) -> np.ndarray:
        seeds = None if all(seed is None for seed in self._seeds) else list(self._seeds)
        observations, infos = self.env.reset(seed=seeds)
        self.reset_infos = self._per_env(infos)
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, terminated, truncated, infos = self.env.step(self._actions)
        per_env = self._per_env(infos)
        final = infos.get("final_obs")
        for i in np.flatnonzero(terminated | truncated):
            per_env[i]["terminal_observation"] = final[i]
            per_env[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return observations, rewards.astype(np.float32), terminated | truncated, per_env

    def _per_env(self, infos: dict[str, Any]) -> list[dict[str, Any]]:
        """Gymnasium's batched ``infos`` as one dict per env, holding the keys its mask sets."""
        per_env: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, values in infos.items():
            if key.startswith("_") or key in ("final_obs", "final_info"):
                continue
            mask = infos.get(f"_{key}", np.ones(self.num_envs, dtype=bool))
            for i in np.flatnonzero(mask):
                per_env[i][key] = values[i]
        return per_env

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.env.unwrapped, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise NotImplementedError("The envs of a vector env share their attributes; set them on the vector env.")

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        raise NotImplementedError("The envs of a vector env are not separate objects; call the vector env.")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)
