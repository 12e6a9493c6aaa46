"""Train the offline Data Mixing Agent on recorded trajectories, save it, and compare it with baselines on the env
the trajectories were recorded on: the library calls behind ``mixing-gym train-agent --algo dma`` and
``mixing-gym evaluate --agents dma --model <out>/agent``.

    python examples/train_offline_agent.py --dataset runs/trajectories --out runs/dma
    python examples/train_offline_agent.py --dataset runs/trajectories --out runs/dma --eval-space code
    python examples/train_offline_agent.py --dataset runs/trajectories --out runs/dma-awr --method awr \\
        --action-encoding centred --standardise-rewards --reward-scale 1      # the headline's dma_tuned

Every field of ``OfflineConfig`` is an option (``--bc-steps``, ``--method``, ...: see ``--help``). The agent
learns from the dataset alone and acts on any domain space (``--eval-space``). Writes ``<out>/agent``,
``<out>/training_log.csv`` and the comparison (``results.md``, plots) to ``<out>/evaluation``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.cli.arguments import set_thread_policy, split_names
from agents.cli.dataclass_options import add_options, options_from_args
from agents.findings import finding
from agents.harness import evaluate_agents
from agents.offline import WEIGHTS_FILE, OfflineConfig, train_offline_agent
from agents.registry import AgentResources, Need, agent_spec, make_agent
from mixing_gym.storage import sha256_file
from mixing_gym.trajectories import load_trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="recorded trajectories (what load_trajectories reads)")
    parser.add_argument("--out", default="runs/dma", help="agent, training log and comparison (default: runs/dma)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--seeds", type=int, default=3, help="evaluation episodes per agent (seeds 0..N-1)")
    parser.add_argument("--baselines", default="uniform,fixed_ratio", help="comma-separated baselines")
    parser.add_argument("--eval-space", default=None, help="evaluate on this domain space instead of the dataset's")
    add_options(parser.add_argument_group("OfflineConfig"), OfflineConfig)
    args = parser.parse_args()

    baselines = split_names(args.baselines)
    if any(agent_spec(name).needs is not Need.NOTHING for name in baselines):
        raise SystemExit(f"Baselines {baselines}: choose agents that need nothing (`mixing-gym agents`).")
    set_thread_policy(1)  # the agent's networks are small: one thread trains them as fast
    config = options_from_args(OfflineConfig, args)
    dataset = load_trajectories(args.dataset)
    agent, log = train_offline_agent(dataset, config, seed=args.seed, verbose=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log.to_csv(out / "training_log.csv", index=False)
    agent_dir = agent.save(out / "agent")

    env_kwargs = {**dataset.env_kwargs, **({"space": args.eval_space} if args.eval_space else {})}
    # Cached episodes are keyed by agent name: name the agent by its weights so that a retrained one plays again.
    agents = {f"dma-{sha256_file(agent_dir / WEIGHTS_FILE)[:8]}": make_agent("dma", AgentResources(model=agent_dir)),
              **{name: make_agent(name) for name in baselines}}
    comparison = evaluate_agents(agents, args.seeds, env_kwargs, out / "evaluation", env_id=dataset.env_id)
    print((comparison.output_dir / "results.md").read_text())
    print(finding(comparison.summary))


if __name__ == "__main__":
    main()
