"""Train the reference PPO agent on DataMixing-v1, resumable, and compare it with baselines: the library calls
behind ``mixing-gym train-agent --algo ppo`` (every env and PPO option: its ``--help``) and
``mixing-gym evaluate --agents ppo,uniform,fixed_ratio --model runs/ppo/ppo_final.zip``.

    python examples/train_ppo.py --preset micro
    python examples/train_ppo.py --preset micro --timesteps 4096 \\
        --resume runs/ppo/checkpoints/ppo_1600_steps.zip          # continue an interrupted run

Checkpoints go to ``<log-dir>/checkpoints``, SB3's training log to ``<log-dir>/progress.csv`` (and
TensorBoard events when ``tensorboard`` is installed), episode returns to ``<log-dir>/monitor``, the
comparison to ``<log-dir>/evaluation``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.cli.arguments import set_thread_policy
from agents.findings import finding
from agents.harness import evaluate_agents
from agents.ppo import FINAL_MODEL, train_ppo
from agents.registry import AgentResources, make_agent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="micro", help="proxy preset (default: micro)")
    parser.add_argument("--timesteps", type=int, default=2048, help="env steps in total (default: 2048)")
    parser.add_argument("--log-dir", default="runs/ppo", help="checkpoints, logs, final model (default: runs/ppo)")
    parser.add_argument("--resume", default=None, help="a checkpoint zip to continue from")
    parser.add_argument("--seeds", type=int, default=3, help="evaluation episodes per agent (default: 3)")
    args = parser.parse_args()

    set_thread_policy(1)  # one torch thread per process, the envs' subprocesses included
    log_dir = Path(args.log_dir)
    train_ppo(args.preset, args.timesteps, n_envs=2, log_dir=log_dir, resume_from=args.resume)
    resources = AgentResources(model=log_dir / FINAL_MODEL)  # read by ppo alone
    agents = {name: make_agent(name, resources) for name in ("ppo", "uniform", "fixed_ratio")}
    comparison = evaluate_agents(agents, args.seeds, {"preset": args.preset}, log_dir / "evaluation")
    print((comparison.output_dir / "results.md").read_text())
    print(finding(comparison.summary))


if __name__ == "__main__":
    main()
