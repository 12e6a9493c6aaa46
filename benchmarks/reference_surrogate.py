"""Write the reference surrogate that ``DataMixingSurrogate-v1`` ships with, and its data card.

    python benchmarks/reference_surrogate.py          # mixing_gym/reference/surrogate-v1-small/

The surrogate is the headline's (``benchmarks/headline_v1.py``): the per-domain model with a 5-member bootstrap
ensemble (seed 0), fit on every one of the 128 ``small`` trajectories shipped beside it
(``mixing_gym/reference/trajectories-v1-small``).
Its fidelity is that of the same fit on the first 96 of them, scored on the last 32
(``docs/results/surrogate_fidelity_v1-small.csv``, ``python benchmarks/surrogate_fidelity.py``). The fit is
deterministic, so a rerun writes the same arrays (``tests/test_surrogate_v1.py`` checks the shipped ones).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pandas as pd

from mixing_gym.reference import CARD_FILE, REFERENCE_TRAJECTORIES, reference_surrogate_path
from mixing_gym.storage import atomic_write_json
from mixing_gym.surrogate import SurrogateModel
from mixing_gym.trajectories import load_trajectories, read_metadata

ROOT = Path(__file__).resolve().parent.parent
FIDELITY = ROOT / "docs" / "results" / "surrogate_fidelity_v1-small.csv"
ENV_ID = "DataMixingSurrogate-v1"
#: Bumped whenever the shipped surrogate changes (other trajectories, another fit).
VERSION = "v1-small-1"
ENSEMBLE, SEED = 5, 0
COLLECTION_COMMAND = ("mixing-gym collect --env DataMixing-v1 --preset small --episodes 128 --workers 2 --output "
                      "mixing_gym/reference/trajectories-v1-small --baseline-share 0.3 --tilt-share 0.4 "
                      "--seed-pool 8 --seed 0")


def fit_reference() -> SurrogateModel:
    """The reference surrogate, fit anew from the committed trajectories."""
    return SurrogateModel.fit(load_trajectories(REFERENCE_TRAJECTORIES), ensemble=ENSEMBLE, seed=SEED)


def _plain(value: float) -> float | int:
    """A CSV figure for the card: counts as whole numbers, errors to 4 decimals."""
    return int(value) if float(value).is_integer() else round(float(value), 4)


def main() -> None:
    path = reference_surrogate_path(ENV_ID)
    fit_reference().save(path)
    collection = read_metadata(REFERENCE_TRAJECTORIES)["mixing_gym"]
    fidelity = pd.read_csv(FIDELITY).set_index("variant").loc["per-domain"].to_dict()
    card = {
        "env_id": ENV_ID,
        "version": VERSION,
        "real_env": {"env_id": collection["env_id"], "env_kwargs": collection["env_kwargs"]},
        "trajectories": {
            "dataset": "mixing_gym/reference/trajectories-v1-small (in the package; `mixing-gym install-dataset` "
                       "installs it as the Minari dataset mixing-gym/v1-small-v0)",
            "episodes": len(load_trajectories(REFERENCE_TRAJECTORIES).episodes),
            "collected_by": COLLECTION_COMMAND,
            "collection_settings": collection["extra"]["settings"],
            "policies": "random mixture sequences: 30% perturbed baselines, 40% field tilts near the top, 30% "
                        "Dirichlet walks, played on 8 env seeds in turn (common random numbers)",
        },
        "model": {"per_domain": True, "ensemble": ENSEMBLE, "seed": SEED,
                  "fit_on": "every episode; the ensemble's other members on bootstrap resamples of the episodes"},
        "fidelity_on_held_out": {
            "how": "the same per-domain fit on the first 96 episodes, scored on the last 32 (surrogate_fidelity.py)",
            **{key: _plain(value) for key, value in fidelity.items()},
        },
        "code_field": "none: no DataMixing-v1 code-field trajectories have been collected",
        "written_by": f"python benchmarks/reference_surrogate.py {shlex.join(sys.argv[1:])}".strip(),
    }
    atomic_write_json(path / CARD_FILE, card)
    print(f"{path}: {sum(f.stat().st_size for f in path.iterdir()) / 1e3:.0f} kB; card {path / CARD_FILE}")


if __name__ == "__main__":
    main()
