"""Reference PPO (Stable-Baselines3) on the mixing envs, configured for expensive steps; resumable.

Every env step trains and scores a real proxy model (about a second on ``micro``, ten on ``small``
on two CPU cores), so the rollouts are short (``n_steps`` = one episode per env), the whole rollout is
one mini-batch reused for several epochs, and the envs run in subprocesses, one torch thread each.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents.base import SB3Agent
from mixing_gym import DEFAULT_ENV_ID, REAL_ENV_IDS
from mixing_gym.envs import prepare_env

ENV_ID = f"mixing_gym:{DEFAULT_ENV_ID}"
SURROGATE_ENV_ID = "mixing_gym:DataMixingSurrogate-v1"
FINAL_MODEL = "ppo_final.zip"

#: Defaults for steps that cost seconds: undiscounted returns (an episode's return is the final
#: objective), small networks, the whole rollout as one mini-batch for 10 epochs.
PPO_DEFAULTS: dict[str, Any] = {
    "learning_rate": 3e-4,
    "n_epochs": 10,
    "gamma": 1.0,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "policy_kwargs": {"net_arch": [64, 64]},
}


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def train_ppo(
    preset: Any = "small",
    total_timesteps: int = 256,
    n_envs: int = 2,
    seed: int = 0,
    log_dir: str | Path = "runs/ppo",
    checkpoint_freq: int | None = None,
    resume_from: str | Path | None = None,
    env_kwargs: dict[str, Any] | None = None,
    ppo_kwargs: dict[str, Any] | None = None,
    progress_bar: bool | None = None,
    verbose: int = 1,
    env_id: str = ENV_ID,
) -> PPO:
    """Train (or resume training) PPO on a mixing env; saves checkpoints, logs and the final model.

    Args:
        preset: the proxy preset (name or ``ProxyPreset``).
        total_timesteps: env steps to reach in total; a resumed run trains only what the checkpoint lacks.
        n_envs: envs stepped in parallel (subprocesses started with ``forkserver`` when more than one).
        seed: seeds the policy and the envs' first resets.
        log_dir: where ``checkpoints/``, ``monitor/``, ``progress.csv`` (TensorBoard events too, when
            ``tensorboard`` is installed) and ``ppo_final.zip`` go.
        checkpoint_freq: env steps between checkpoints (default: every 10 rollouts).
        resume_from: a checkpoint zip to continue from (``PPO.load(path, env=...)``).
        env_kwargs: more keyword arguments of ``gym.make`` (``cache_dir``, ``space``, ``reward``, ...).
        ppo_kwargs: overrides of :data:`PPO_DEFAULTS` and of ``n_steps`` / ``batch_size``.
        progress_bar: SB3's progress bar; default on when ``verbose`` and ``tqdm`` and ``rich`` are installed.
        verbose: 1 prints SB3's training tables, 0 keeps quiet (the CSV log is written either way).
        env_id: the env to train on: ``DataMixing-v1`` (default), ``DataMixing-v0`` or the surrogate
            (:data:`SURROGATE_ENV_ID`, with ``env_kwargs={"surrogate": path}``), whose steps cost
            microseconds, so its envs run in the main process.
    """
    log_dir = Path(log_dir)
    # SB3's make_vec_env asks for rgb_array rendering unless told otherwise; training renders nothing
    env_kwargs = {"render_mode": None, **(env_kwargs or {})}
    real_env = env_id.rpartition(":")[2] in REAL_ENV_IDS  # with or without the module prefix
    if real_env:
        env_kwargs["preset"] = preset
        prepare_env(env_id, env_kwargs, progress=verbose > 0)  # once, here, before any worker starts
    threads = torch.get_num_threads()
    subprocesses = n_envs > 1 and real_env  # surrogate steps cost microseconds: subprocesses would only add IPC
    done = 0
    if resume_from is not None:
        data, _, _ = load_from_zip_file(resume_from, load_data=True)
        done = int(data["num_timesteps"])
    # A resumed run starts its envs from other seeds than the run it continues already saw.
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed + done, env_kwargs=env_kwargs,
                       monitor_dir=str(log_dir / "monitor"), vec_env_cls=SubprocVecEnv if subprocesses else DummyVecEnv,
                       vec_env_kwargs={"start_method": "forkserver"} if subprocesses else None)
    if subprocesses:  # the policy is a small MLP: one thread trains it as fast, more would spin against the workers
        torch.set_num_threads(1)
    try:
        if resume_from is not None:
            model = PPO.load(resume_from, env=env, device="cpu")
        else:
            steps_per_episode = env.get_attr("num_steps")[0]
            settings = {**PPO_DEFAULTS, "n_steps": steps_per_episode, "batch_size": steps_per_episode * n_envs,
                        **(ppo_kwargs or {})}
            model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=verbose, **settings)
        formats = (["stdout"] if verbose else []) + ["csv"] + (["tensorboard"] if _has("tensorboard") else [])
        model.set_logger(configure(str(log_dir), formats))
        checkpoints = CheckpointCallback(save_freq=max((checkpoint_freq or 10 * model.n_steps * n_envs) // n_envs, 1),
                                         save_path=str(log_dir / "checkpoints"), name_prefix="ppo")
        if progress_bar is None:
            progress_bar = verbose > 0 and _has("tqdm") and _has("rich")
        remaining = total_timesteps - model.num_timesteps
        if remaining > 0:
            model.learn(remaining, callback=checkpoints, reset_num_timesteps=resume_from is None,
                        progress_bar=progress_bar)
        model.save(log_dir / FINAL_MODEL)
    finally:
        env.close()
        torch.set_num_threads(threads)
    return model


class PPOAgent(SB3Agent):
    """A trained PPO policy as an :class:`~agents.base.Agent` (deterministic actions).

    Args:
        model: a Stable-Baselines3 ``PPO`` model; :meth:`load` reads one from a zip.
    """

    @classmethod
    def load(cls, path: str | Path) -> PPOAgent:
        return cls(PPO.load(path, device="cpu"))
