"""``mixing-gym collect``: trajectories of random mixture policies, recorded as a Minari dataset."""

from __future__ import annotations

import argparse

from agents.cli.arguments import add_backend_arguments, add_command, add_env_arguments, backend_of, env_kwargs_of

DESCRIPTION = """\
Record episodes of random mixture policies (Dirichlet draws of varied
concentration, field splits from source-only to target-only, baselines'
mixtures perturbed by noise; with --tilt-share, mixtures near the top) on
--env (DataMixing-v1 by default), in --workers processes (or Ray tasks,
--backend ray): the offline RL data of the surrogate env and the Data
Mixing Agent. Episode i depends only on --seed and i, so a Ray collection
records what a local one does; --seed-pool plays them on a few seeds in
turn.

Writes a Minari dataset folder at --output: data/metadata.json (the env's
arguments and layout) and one Arrow file per episode under data/. Each
finished episode is committed atomically, so a killed collection keeps what
it wrote and --resume continues it to --episodes."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``collect``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "collect", "record trajectories of random mixtures (a Minari dataset)",
                         DESCRIPTION, ["mixing-gym collect --preset small --episodes 64 --workers 2",
                                       "mixing-gym collect --preset small --episodes 128 --workers 2 --resume",
                                       "mixing-gym collect --episodes 128 --tilt-share 0.4 --seed-pool 8",
                                       "mixing-gym collect --episodes 512 --backend ray --address auto"])
    add_env_arguments(parser, "each worker process")
    parser.add_argument("--output", default="runs/trajectories", help="the dataset folder (default: runs/trajectories)")
    parser.add_argument("--seed", type=int, default=0, help="the collection's seed: episode i depends on (seed, i)")
    parser.add_argument("--episodes", type=int, required=True, help="episodes the dataset should hold")
    add_backend_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="continue the dataset at --output to --episodes")
    parser.add_argument("--baseline-share", type=float, default=0.5,
                        help="share of the episodes that perturb a baseline's mixture (default: %(default)s)")
    parser.add_argument("--tilt-share", type=float, default=0.0,
                        help="share of the episodes near the top: a target share in [0.1, 0.6] and log-normal "
                             "tilts within each field, held or switched once (default: 0, none)")
    parser.add_argument("--rule-share", type=float, default=0.0,
                        help="share of the episodes that play a random mixing rule over the domains' descriptors "
                             "(a target share in [0.1, 0.6], each field's domains by a softmax of random "
                             "coefficients on their descriptors; default: 0, none)")
    parser.add_argument("--seed-pool", type=int, default=None,
                        help="play the episodes on this many env seeds in turn: common random numbers "
                             "(default: a seed per episode)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Collect the episodes and print where they are.

    Args:
        args: the parsed arguments.
    """
    from agents.collect import MixturePlan, RulePlan, TiltPlan, collect

    plan = MixturePlan(baseline_share=args.baseline_share,
                       tilts=TiltPlan(share=args.tilt_share) if args.tilt_share else None, seed_pool=args.seed_pool,
                       rules=RulePlan(share=args.rule_share) if args.rule_share else None)
    summary = collect(env_kwargs_of(args), args.episodes, args.workers, args.output, args.seed, args.resume, plan,
                      env_id=args.env, backend=backend_of(args))
    print(f"{summary.path} holds {summary.episodes} episodes; this run played {summary.new_episodes} in "
          f"{summary.seconds:.0f} s with {summary.workers} workers ({summary.episodes_per_hour:.0f} per hour).")
    print("Read it with mixing_gym.trajectories.load_trajectories (or to_hf_dataset, minari_dataset), or "
          f"minari.MinariDataset('{summary.path / 'data'}').")
