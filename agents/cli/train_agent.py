"""``mixing-gym train-agent``: train PPO, the offline Data Mixing Agent or a surrogate plan, and save it for
``mixing-gym evaluate --model``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from agents.cli.arguments import add_command, add_env_arguments, env_kwargs_of, target_field_of
from agents.cli.dataclass_options import add_options, options_from_args
from agents.offline import OfflineConfig
from agents.planner import SurrogatePlanner

DESCRIPTION = """\
Train one agent and save it where `mixing-gym evaluate --agents ALGO
--model PATH` plays it; --output defaults to runs/<algo>:
  ppo      PPO (Stable-Baselines3) on the real env (--env, --preset, ...),
           resumable: --output/ppo_final.zip, with checkpoints/, monitor/
           and progress.csv beside it
  dma      the offline Data Mixing Agent on recorded trajectories
           (--trajectories, one folder or several spaces' folders, else
           the reference ones of --target-field): --output/agent/ and
           --output/training_log.csv
  planner  a mixture schedule planned with the cross-entropy method on a
           surrogate (--surrogate, else the reference one of
           --target-field): --output/planner.json and --output/surrogate/
Each algorithm reads the options of its own group below; the env's options
are PPO's, but for --target-field and --reward, which all three read."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``train-agent``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "train-agent", "train PPO, the Data Mixing Agent or a plan, and save it",
                         DESCRIPTION, ["mixing-gym train-agent --algo ppo --preset micro --timesteps 2048",
                                       "mixing-gym train-agent --algo dma --method awr --action-encoding centred",
                                       "mixing-gym train-agent --algo dma --method awr --trajectories A B",
                                       "mixing-gym train-agent --algo planner --target-field code --phases 2"])
    parser.add_argument("--algo", required=True, choices=tuple(TRAINERS), help="what to train")
    parser.add_argument("--output", default=None, help="where the agent goes (default: runs/<algo>)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the training: PPO's policy and envs, dma's networks, the plan's candidates "
                             "(default: 0)")
    add_env_arguments(parser, "the training process and PPO's env processes")

    ppo = parser.add_argument_group("--algo ppo")
    ppo.add_argument("--timesteps", type=int, default=2048, help="env steps in total (default: 2048)")
    ppo.add_argument("--envs", type=int, default=2, help="envs in subprocesses (default: 2)")
    ppo.add_argument("--checkpoint-freq", type=int, default=None,
                     help="env steps between checkpoints (default: 10 rollouts)")
    ppo.add_argument("--resume", default=None, help="a checkpoint zip to continue from")

    dma = parser.add_argument_group("--algo dma: the fields of agents.offline.OfflineConfig")
    dma.add_argument("--trajectories", nargs="+", default=None,
                     help="the recorded trajectories, one folder or several (several spaces: --method awr; with "
                          "--read-descriptors the agent knows domains by their descriptors; default: the reference "
                          "ones of the target field)")
    add_options(dma, OfflineConfig)

    planner = parser.add_argument_group("--algo planner: agents.planner.SurrogatePlanner's settings")
    planner.add_argument("--surrogate", default=None,
                         help="the surrogate folder (default: the reference one of the target field)")
    add_options(planner, SurrogatePlanner, skip=("reward", "seed"))  # the command's own --reward and --seed
    parser.set_defaults(func=run)


def train_ppo_agent(args: argparse.Namespace, output: Path) -> Path:
    """Train PPO on the env of the command's options; returns the final model's path.

    Args:
        args: the parsed arguments.
        output: the log folder of the run.
    """
    from agents.ppo import FINAL_MODEL, train_ppo

    train_ppo(args.preset, args.timesteps, args.envs, args.seed, output, args.checkpoint_freq,
              resume_from=args.resume, env_kwargs=env_kwargs_of(args), env_id=f"mixing_gym:{args.env}")
    return output / FINAL_MODEL


def train_dma_agent(args: argparse.Namespace, output: Path) -> Path:
    """Train the offline Data Mixing Agent; returns the folder it is saved in.

    Args:
        args: the parsed arguments.
        output: the folder of the agent and its training log.
    """
    from agents.offline import train_offline_agent
    from agents.registry import AgentResources

    config = options_from_args(OfflineConfig, args)  # a bad value is reported before anything loads
    if args.trajectories and len(args.trajectories) > 1:
        trajectories = [Path(folder) for folder in args.trajectories]
    else:
        trajectories = AgentResources(target_field=target_field_of(args),
                                      trajectories=args.trajectories and args.trajectories[0]).reference_trajectories()
    agent, log = train_offline_agent(trajectories, config, seed=args.seed, verbose=True)
    output.mkdir(parents=True, exist_ok=True)
    log.to_csv(output / "training_log.csv", index=False)
    return agent.save(output / "agent")


def train_planner_agent(args: argparse.Namespace, output: Path) -> Path:
    """Plan a schedule on the surrogate; returns the folder the plan is saved in.

    Args:
        args: the parsed arguments.
        output: the plan's folder.
    """
    from agents.registry import AgentResources

    surrogate = AgentResources(target_field=target_field_of(args), surrogate=args.surrogate).reference_surrogate()
    planner = options_from_args(SurrogatePlanner, args, surrogate=surrogate, reward=args.reward, seed=args.seed)
    planner.learn()
    print(f"planned return on the surrogate: {planner.planned_return:+.4f}")
    return planner.save(output)


TRAINERS: dict[str, Callable[[argparse.Namespace, Path], Path]] = {
    "ppo": train_ppo_agent, "dma": train_dma_agent, "planner": train_planner_agent}


def run(args: argparse.Namespace) -> None:
    """Train the agent of ``--algo``, save it, and print how to play it.

    Args:
        args: the parsed arguments.
    """
    path = TRAINERS[args.algo](args, Path(args.output or f"runs/{args.algo}"))
    field = target_field_of(args)
    print(f"saved {path}; play it with\n  mixing-gym evaluate --agents {args.algo} --model {path}"
          + (f" --target-field {field}" if field else ""))
