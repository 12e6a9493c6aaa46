"""``mixing-gym demo``: the whole loop on the default env: a short PPO run, then compared with baselines."""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.cli.arguments import add_command, env_kwargs_of
from agents.cli.evaluate import COMPARISON_FILES, add_comparison_arguments, report

DEMO_AGENTS = ("target_only", "fixed_ratio", "odm", "doremi")

DESCRIPTION = f"""\
The whole loop on the default env (DataMixing-v1: small proxy, math-v1
space; --env, --preset and --space change it): train PPO for 16 steps in 2
worker processes, then play it and the baselines target_only, fixed_ratio,
odm and doremi on the same seeds and compare them as evaluate does, ending
with what the comparison found. 12 min 20 s on 2 idle CPU cores from a cold
cache: preparing the data 1 min, pretraining the base checkpoint 4 min, PPO
1 min, then 5 episodes of 8 steps, about 70 s each; 7 minutes once the
cache is there.

Writes into --output: ppo/ (the PPO model ppo_final.zip, its checkpoints and
logs; a rerun reuses the model) and evaluate's files:
{COMPARISON_FILES}"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``demo``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "demo", "baselines and a short PPO run on the default env, compared", DESCRIPTION,
                         ["mixing-gym demo", "mixing-gym demo --preset micro --output runs/demo-micro",
                          "mixing-gym demo --seeds 5 --output runs/demo-5seeds"])
    add_comparison_arguments(parser, seeds=1, output="runs/demo")
    parser.add_argument("--ppo-timesteps", type=int, default=16,
                        help="PPO training steps (default: 16, two episodes)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Train PPO unless its model is there, play it and the baselines, and print the report.

    Args:
        args: the parsed arguments.
    """
    from agents.harness import evaluate_agents
    from agents.ppo import FINAL_MODEL, train_ppo
    from agents.registry import AgentResources, make_agent
    from mixing_gym.envs import prepare_env

    output = Path(args.output)
    env_kwargs = env_kwargs_of(args)
    prepare_env(args.env, env_kwargs)
    model_path = output / "ppo" / FINAL_MODEL
    if not model_path.exists():
        print(f"training PPO for {args.ppo_timesteps} steps in 2 envs ...", flush=True)
        train_ppo(args.preset, total_timesteps=args.ppo_timesteps, n_envs=2, seed=args.seed, log_dir=output / "ppo",
                  env_kwargs=env_kwargs, verbose=0, progress_bar=True, env_id=f"mixing_gym:{args.env}")
    resources = AgentResources(model=model_path)  # read by ppo alone: the baselines need nothing
    agents = {name: make_agent(name, resources) for name in (*DEMO_AGENTS, "ppo")}
    report(evaluate_agents(agents, args.seeds, env_kwargs, output, env_id=args.env))
