"""Train the offline Data Mixing Agent on recorded trajectories, save it, and compare it with baselines.

    python examples/train_offline_agent.py --dataset runs/trajectories --out runs/dma
    python examples/train_offline_agent.py --dataset runs/trajectories --out runs/dma --eval-space code
    python examples/train_offline_agent.py --dataset runs/trajectories --out runs/dma-awr --method awr \
        --action-encoding centred --standardise-rewards      # the headline's dma_tuned

The agent learns from the dataset alone (behaviour cloning on its best episodes, then Conservative
Q-Learning, or advantage-weighted regression with ``--method awr``), is saved to ``<out>/agent``
(``agent.safetensors`` + ``agent.json``), loaded back, and played on the real ``DataMixing-v0`` with the
dataset's env arguments (or on another domain space with ``--eval-space``: the same agent acts on any space)
next to baselines, on the same seeds.
Writes ``<out>/training_log.csv`` and the comparison (``results.md``, plots) to ``<out>/evaluation``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from agents.harness import evaluate_agents
from agents.offline import (
    ACTION_ENCODINGS,
    METHODS,
    WEIGHTS_FILE,
    DataMixingAgent,
    OfflineConfig,
    train_offline_agent,
)
from agents.registry import AGENTS, NEEDS_TRAINING
from mixing_gym.storage import sha256_file
from mixing_gym.trajectories import load_trajectories


def main() -> None:
    defaults = OfflineConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="recorded trajectories (what load_trajectories reads)")
    parser.add_argument("--out", default="runs/dma", help="agent, training log and comparison (default: runs/dma)")
    parser.add_argument("--bc-steps", type=int, default=defaults.bc_steps, help="behaviour-cloning updates")
    parser.add_argument("--cql-steps", type=int, default=defaults.cql_steps, help="CQL updates")
    parser.add_argument("--method", choices=METHODS, default=defaults.method,
                        help="what follows the warm start (default: cql; awr: advantage-weighted regression)")
    parser.add_argument("--awr-steps", type=int, default=defaults.awr_steps, help="AWR's value and actor updates")
    parser.add_argument("--action-encoding", choices=ACTION_ENCODINGS, default=defaults.action_encoding,
                        help="how recorded logits are written (centred: the ignored common shift at the cube's centre)")
    parser.add_argument("--standardise-rewards", action="store_true",
                        help="standardise the rewards over the dataset (reward scale 1) instead of scaling them by 10")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--seeds", type=int, default=3, help="evaluation episodes per agent (seeds 0..N-1)")
    parser.add_argument("--baselines", default="uniform,fixed_ratio", help="comma-separated baseline agents")
    parser.add_argument("--eval-space", default=None, help="evaluate on this domain space instead of the dataset's")
    parser.add_argument("--cache-dir", default=None, help="cache root (default: $MIXING_GYM_CACHE or ~/.cache/...)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads of training and the env (default: 1, for shared CPUs)")
    args = parser.parse_args()

    baselines = [name for name in args.baselines.split(",") if name]
    unusable = [name for name in baselines if name not in AGENTS or name in NEEDS_TRAINING]
    if unusable:
        raise SystemExit(f"Baselines {unusable} are unknown or need training; choose from "
                         f"{sorted(set(AGENTS) - set(NEEDS_TRAINING))}.")
    torch.set_num_threads(args.torch_threads)  # the agent's networks are small: one thread trains them as fast
    out = Path(args.out)

    dataset = load_trajectories(args.dataset)
    layout = dataset.layout
    print(f"{len(dataset.episodes)} episodes of {layout.num_steps} steps on {layout.num_domains} domains")
    rewards = {"standardise_rewards": True, "reward_scale": 1.0} if args.standardise_rewards else {}
    config = OfflineConfig(bc_steps=args.bc_steps, cql_steps=args.cql_steps, method=args.method,
                           awr_steps=args.awr_steps, action_encoding=args.action_encoding, **rewards)
    start = time.perf_counter()
    agent, log = train_offline_agent(dataset, config, seed=args.seed, verbose=True)
    updates = config.cql_steps if config.method == "cql" else config.awr_steps
    print(f"trained in {time.perf_counter() - start:.1f} s ({config.bc_steps} BC + {updates} "
          f"{config.method.upper()} updates)")
    out.mkdir(parents=True, exist_ok=True)
    log.to_csv(out / "training_log.csv", index=False)
    agent_dir = agent.save(out / "agent")

    env_kwargs = {**dataset.env_kwargs, "torch_threads": args.torch_threads}
    if args.eval_space:
        env_kwargs["space"] = args.eval_space
    if args.cache_dir:
        env_kwargs["cache_dir"] = args.cache_dir
    # Cached episodes are keyed by agent name: name the agent by its weights so a retrained one plays again.
    name = f"dma-{sha256_file(agent_dir / WEIGHTS_FILE)[:8]}"
    agents = {name: DataMixingAgent.load(agent_dir), **{b: AGENTS[b]() for b in baselines}}
    comparison = evaluate_agents(agents, args.seeds, env_kwargs, out / "evaluation", env_id=dataset.env_id)
    print((comparison.output_dir / "results.md").read_text())
    print(f"agent: {agent_dir}; results and plots: {comparison.output_dir}")


if __name__ == "__main__":
    main()
