"""One episode of DataMixing-v1 with a random agent: the first thing to run.

    python examples/quickstart.py                 # the default `small` proxy on the math field
    python examples/quickstart.py --preset micro  # seconds instead of minutes
    python examples/quickstart.py --env DataMixing-v0 --target-field code

The first run prepares the data and pretrains the base checkpoint (about 8 minutes for `small` on two
CPU cores); later runs reuse the cache.
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import mixing_gym  # noqa: F401  (registers the envs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--env", default="DataMixing-v1", choices=["DataMixing-v1", "DataMixing-v0"])
    parser.add_argument("--target-field", default="math", choices=["math", "code"], help="code: DataMixing-v0 only")
    parser.add_argument("--seed", type=int, default=0)
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
