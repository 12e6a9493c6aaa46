"""``mixing-gym install-dataset``: the reference trajectories shipped in the package, as a Minari dataset."""

from __future__ import annotations

import argparse

from agents.cli.arguments import add_command

DESCRIPTION = """\
Copy reference trajectories shipped in the package (128 DataMixing-v1
episodes of the small proxy: mixing-gym/v1-small-v0 of the math field,
mixing-gym/v1-code-small-v0 of the code field) into Minari's datasets folder
($MINARI_DATASETS_PATH, else ~/.minari/datasets) under --dataset-id, with
ref_min_score (uniform's mean return) and ref_max_score (the search's best),
so that minari.load_dataset(ID) reads them offline and
minari.get_normalized_score(dataset, returns) scales returns. Nothing is
downloaded; an installed copy is kept unless --force."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``install-dataset``.

    Args:
        commands: the command registry of the ``mixing-gym`` parser.
    """
    parser = add_command(commands, "install-dataset", "make the reference trajectories a Minari dataset",
                         DESCRIPTION, ["mixing-gym install-dataset",
                                       "mixing-gym install-dataset --dataset-id mixing-gym/v1-code-small-v0",
                                       "MINARI_DATASETS_PATH=/data/minari mixing-gym install-dataset --force"])
    parser.add_argument("--dataset-id", default="mixing-gym/v1-small-v0",
                        help="the reference dataset to install (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="install again over an installed copy")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Install the dataset and print where it is and its reference scores.

    Args:
        args: the parsed arguments.
    """
    from mixing_gym.trajectories import install_reference_dataset, read_metadata

    path = install_reference_dataset(args.dataset_id, force=args.force)
    metadata = read_metadata(path)
    print(f"{args.dataset_id}: {metadata['total_episodes']} episodes at {path}; ref_min_score "
          f"{metadata['ref_min_score']:+.4f}, ref_max_score {metadata['ref_max_score']:+.4f}.\n"
          f"Read it with minari.load_dataset({args.dataset_id!r}).")
