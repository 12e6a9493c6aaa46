"""Stable-Baselines3 PPO on DataMixing-v0, with several envs in subprocesses.

    python examples/sb3_ppo.py --preset micro --timesteps 64 --envs 2

Each step trains a real proxy model, so PPO is configured for expensive steps: short rollouts
(``n_steps`` = one episode), small batches, one torch thread per worker.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

import mixing_gym  # noqa: F401  (registers DataMixing-v0)
from mixing_gym.engine import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--timesteps", type=int, default=64)
    parser.add_argument("--envs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default="ppo_data_mixing")
    args = parser.parse_args()

    prepare("math", args.preset)  # once, in this process, before the workers start
    env = make_vec_env("mixing_gym:DataMixing-v0", n_envs=args.envs, seed=args.seed, env_kwargs={"preset": args.preset},
                       vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": "forkserver"})
    steps_per_episode = env.get_attr("num_steps")[0]
    model = PPO("MlpPolicy", env, n_steps=steps_per_episode, batch_size=steps_per_episode, n_epochs=4,
                learning_rate=3e-4, seed=args.seed, verbose=1)
    model.learn(total_timesteps=args.timesteps)
    model.save(args.save)
    env.close()

    evaluation = gym.make("DataMixing-v0", preset=args.preset)
    observation, _ = evaluation.reset(seed=123)
    episode_return, terminated = 0.0, False
    while not terminated:
        action, _ = model.predict(observation, deterministic=True)
        observation, reward, terminated, _, info = evaluation.step(action)
        episode_return += reward
    print(f"PPO policy return on seed 123: {episode_return:+.4f} (final mixture {info['mixture'].round(3).tolist()})")


if __name__ == "__main__":
    main()
