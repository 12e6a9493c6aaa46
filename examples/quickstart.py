"""One episode of DataMixing-v1 with a random agent: the first thing to run.

    python examples/quickstart.py                      # the default `small` proxy on the math field (math-v1)
    python examples/quickstart.py --preset micro       # seconds instead of minutes
    python examples/quickstart.py --target-field code  # the code field (code-v1)
    python examples/quickstart.py --env DataMixing-v0  # the v0 env (its spaces: math, code)

The first run prepares the data and pretrains the base checkpoint ({pretraining} for `small` on 2 CPU cores,
mixing_gym.timings says how that was measured); later runs reuse the cache.
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import mixing_gym  # noqa: F401  (registers the envs)
from mixing_gym.timings import BASE_PRETRAINING, minutes_seconds


def main() -> None:
    pretraining = minutes_seconds(BASE_PRETRAINING["small"].seconds)
    parser = argparse.ArgumentParser(description=__doc__.format(pretraining=pretraining),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", help="proxy preset: micro, small, paper-50m (default: small)")
    parser.add_argument("--env", default="DataMixing-v1", choices=["DataMixing-v1", "DataMixing-v0"],
                        help="the env (default: DataMixing-v1)")
    parser.add_argument("--target-field", default="math", choices=["math", "code"],
                        help="the target field: math (math-v1 on DataMixing-v1) or code (code-v1); default: math")
    parser.add_argument("--seed", type=int, default=0, help="the episode's seed (default: 0)")
    args = parser.parse_args()

    env = gym.make(args.env, preset=args.preset, target_field=args.target_field, render_mode="ansi")
    _, info = env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    print(f"{env.unwrapped.num_domains} domains: {env.unwrapped.domain_names}")
    episode_return, terminated, step = 0.0, False, 0
    while not terminated:
        action = env.action_space.sample()  # replace with your agent
        _observation, reward, terminated, _truncated, info = env.step(action)
        episode_return += reward
        step += 1
        print(f"step {step}: reward {reward:+.4f}  "
              f"source {info['source_score']:+.3%}  target {info['target_score']:+.3%}")
    print(env.render())
    print(f"return {episode_return:+.4f}")
    env.close()


if __name__ == "__main__":
    main()
