"""REINFORCE with a Gaussian policy on the vectorised surrogate: an algorithm that is not in Stable-Baselines3,
in one file, benchmarked under the open protocol of ``mixing-gym benchmark`` (``agents.benchmark``).

The benchmark calls ``make_agent(env, seed, budget)`` once per run (``agents.algorithms.AgentFactory``): ``env`` is
the protocol's vector env (16 ``DataMixingSurrogate-v6`` envs stepped in one numpy call), ``budget`` its training
budget in env steps. It returns a plain callable ``observation -> action`` (the policy's mean: deterministic), which
the benchmark scores on the surrogate and validates on the real env.

    python examples/reinforce.py --seeds 2 --validate 0 --timesteps 4096    # benchmarks itself, surrogate only
    mixing-gym benchmark --algo examples/reinforce.py:make_agent --algo ppo --seeds 10   # against PPO, validated
    mixing-gym benchmark --algo examples.reinforce:make_agent                # the same, as a module (from the repo)

The algorithm (Williams, 1992), top to bottom:

1. a policy ``a ~ N(tanh(mlp(observation)), std)``, with one learned log-std per domain: the actions are logits
   in ``[-1, 1]`` (``softmax(a / 0.25)`` is the mixture);
2. every update plays ``episodes_per_update`` whole episodes (8 steps each) on the vector env, all envs in step;
3. the return to go ``G_t`` (no discount: an episode's return is its final balanced score) minus a baseline, the
   mean ``G_t`` of the batch at the same step (every episode starts from the same base model), standardised, is
   each action's advantage;
4. one Adam step on ``-mean(log pi(a_t | s_t) * advantage_t)``, until the budget is spent.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Hyperparameters:
    """REINFORCE's knobs; the defaults were not tuned beyond a few trials on the surrogate."""

    episodes_per_update: int = 32  # whole episodes a gradient step averages over (a multiple of the env count)
    learning_rate: float = 3e-3
    hidden: int = 64  # units of the policy's two hidden layers
    initial_std: float = 0.5  # the exploration noise at the start, on logits in [-1, 1]
    min_std: float = 0.05


def make_agent(env, seed: int, budget: int, hp: Hyperparameters = Hyperparameters()):
    """Train REINFORCE for ``budget`` env steps of ``env`` (the protocol's vector surrogate); return the policy."""
    torch.manual_seed(seed)
    noise = torch.Generator().manual_seed(seed)
    num_envs, num_steps = env.num_envs, env.unwrapped.num_steps
    observation_size = env.single_observation_space.shape[0]
    action_size = env.single_action_space.shape[0]

    # 1. The policy: a tanh-squashed MLP mean and a learned log-std per action.
    mean = nn.Sequential(nn.Linear(observation_size, hp.hidden), nn.Tanh(), nn.Linear(hp.hidden, hp.hidden),
                         nn.Tanh(), nn.Linear(hp.hidden, action_size), nn.Tanh())
    log_std = nn.Parameter(torch.full((action_size,), float(np.log(hp.initial_std))))
    optimizer = torch.optim.Adam([*mean.parameters(), log_std], lr=hp.learning_rate)

    rollouts = max(1, hp.episodes_per_update // num_envs)  # vector rollouts per update
    updates = budget // (rollouts * num_envs * num_steps)
    observation, _ = env.reset(seed=seed)
    for _ in range(updates):
        # 2. Play whole episodes: every env starts together and ends together after num_steps steps (same-step
        # autoreset hands back the next episode's first observation at the last step).
        observations, actions, rewards = [], [], []
        for _ in range(rollouts):
            for _ in range(num_steps):
                state = torch.as_tensor(observation, dtype=torch.float32)
                with torch.no_grad():
                    action = mean(state) + log_std.exp().clamp(min=hp.min_std) * torch.randn(
                        num_envs, action_size, generator=noise)
                observation, reward, _, _, _ = env.step(action.clamp(-1, 1).numpy())
                observations.append(state)
                actions.append(action)
                rewards.append(torch.as_tensor(reward, dtype=torch.float32))
        # (rollouts * num_steps, num_envs) -> (episodes, num_steps)
        rewards = torch.stack(rewards).reshape(rollouts, num_steps, num_envs).transpose(1, 2).reshape(-1, num_steps)

        # 3. Returns to go, minus the batch's mean at each step, standardised.
        returns = rewards.flip(1).cumsum(1).flip(1)
        advantages = returns - returns.mean(0, keepdim=True)
        advantages = advantages / (advantages.std() + 1e-8)

        # 4. The policy gradient step.
        states = torch.stack(observations).reshape(rollouts, num_steps, num_envs, -1).transpose(1, 2)
        taken = torch.stack(actions).reshape(rollouts, num_steps, num_envs, -1).transpose(1, 2)
        std = log_std.exp().clamp(min=hp.min_std)
        log_prob = torch.distributions.Normal(mean(states), std).log_prob(taken).sum(-1)  # (rollouts, envs, steps)
        loss = -(log_prob.reshape(-1, num_steps) * advantages).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    mean.eval()

    def policy(observation: np.ndarray) -> np.ndarray:
        """The policy's mean action: deterministic, as the benchmark scores it."""
        with torch.no_grad():
            return mean(torch.as_tensor(observation, dtype=torch.float32)).numpy()

    return policy


def main() -> None:
    from agents.benchmark import BenchmarkProtocol, markdown, run_benchmark, write_report

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="runs, seeds 0..N-1 (default: 10)")
    parser.add_argument("--timesteps", type=int, default=100_000, help="env steps per run (default: 100000)")
    parser.add_argument("--validate", type=int, default=5, help="runs that also play a real episode (default: 5)")
    parser.add_argument("--output", default="runs/reinforce", help="where the runs go (default: runs/reinforce)")
    args = parser.parse_args()

    protocol = BenchmarkProtocol(timesteps=args.timesteps)
    rows = run_benchmark(protocol, {"reinforce": make_agent}, seeds=args.seeds, output=args.output,
                         validate_runs=args.validate)
    print(markdown(write_report(rows, args.output)))


if __name__ == "__main__":
    main()
