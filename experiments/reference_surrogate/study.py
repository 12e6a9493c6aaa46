"""The reference surrogate that ``DataMixingSurrogate-v1`` ships with, and its data card.

    python experiments/reference_surrogate/study.py run                         # fits it where it is missing
    python experiments/reference_surrogate/study.py run --target-field code --refit   # fits it anew
    python experiments/reference_surrogate/study.py report                      # writes its card.json and page
    python experiments/reference_surrogate/study.py report --target-field code

A reference surrogate is the headline's (``experiments/headline_v1``): the per-domain model with a 5-member
bootstrap ensemble (seed 0), fit on every one of the 128 ``small`` trajectories of its field shipped beside it
(:data:`mixing_gym.reference.REFERENCE_SURROGATES` names them; ``run`` writes it into
``mixing_gym/reference/surrogate-v1-small/`` or ``surrogate-code-v1-small/``). Its fidelity is that of the same fit
on the first 96 of them, scored on the last 32 (``docs/results/surrogate_fidelity_v1-small.csv`` and
``surrogate_fidelity_code-v1-small.csv``: ``python experiments/surrogate_fidelity/study.py run --trajectories
FOLDER``), which ``report`` writes into its card with how the trajectories were collected. The fit is
deterministic up to the BLAS's rounding, so a refit writes the same predictions (``tests/test_surrogate_v1.py``
checks the shipped ones). ``report`` also prints the card in Markdown, as the study's page
``docs/results/reference_surrogate.md`` shows it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import pandas as pd
import yaml

from mixing_gym.reference import CARD_FILE, reference_surrogate
from mixing_gym.result_pages import write_result_page
from mixing_gym.storage import atomic_write_json
from mixing_gym.surrogate import SurrogateModel
from mixing_gym.trajectories import load_trajectories, read_metadata

ROOT = Path(__file__).resolve().parents[2]
ENV_ID = "DataMixingSurrogate-v1"
#: Bumped whenever a shipped surrogate changes (other trajectories, another fit).
VERSIONS = {"math": "v1-small-1", "code": "code-v1-small-1"}
ENSEMBLE, SEED = 5, 0
#: The collection plan both fields' trajectories were collected with (the code field's adds --target-field code).
PLAN_FLAGS = "--baseline-share 0.3 --tilt-share 0.4 --seed-pool 8 --seed 0"


def fit_reference(target_field: str = "math") -> SurrogateModel:
    """The reference surrogate of ``target_field``, fit anew from the committed trajectories.

    Args:
        target_field: ``"math"`` or ``"code"``.
    """
    trajectories = load_trajectories(reference_surrogate(ENV_ID, target_field).trajectories)
    return SurrogateModel.fit(trajectories, ensemble=ENSEMBLE, seed=SEED)


def _plain(value: float) -> float | int:
    """A CSV figure for the card: counts as whole numbers, errors to 4 decimals."""
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _collection_command(target_field: str, folder: Path) -> str:
    field = "" if target_field == "math" else f" --target-field {target_field}"
    return (f"mixing-gym collect --env DataMixing-v1{field} --preset small --episodes 128 --workers 2 --output "
            f"mixing_gym/reference/{folder.name} {PLAN_FLAGS}")


def write_card(target_field: str) -> Path:
    """Write the card of ``target_field``'s reference surrogate from its trajectories and its fidelity CSV; its path.

    Args:
        target_field: ``"math"`` or ``"code"``.
    """
    reference = reference_surrogate(ENV_ID, target_field)
    collection = read_metadata(reference.trajectories)["mixing_gym"]
    fidelity_csv = f"surrogate_fidelity_{reference.trajectories.name.removeprefix('trajectories-')}.csv"
    fidelity = pd.read_csv(ROOT / "docs" / "results" / fidelity_csv).set_index("variant").loc["per-domain"]
    episodes = len(load_trajectories(reference.trajectories).episodes)
    held_out = int(fidelity["held_out_episodes"])
    field_flag = "" if target_field == "math" else f" --target-field {target_field}"
    card = {
        "env_id": ENV_ID,
        "target_field": target_field,
        "version": VERSIONS[target_field],
        "real_env": {"env_id": collection["env_id"], "env_kwargs": collection["env_kwargs"]},
        "trajectories": {
            "dataset": f"mixing_gym/reference/{reference.trajectories.name} (in the package; `mixing-gym "
                       f"install-dataset --dataset-id {reference.dataset_id}` installs it as that Minari dataset)",
            "episodes": episodes,
            "collected_by": _collection_command(target_field, reference.trajectories),
            "collection_settings": collection["extra"]["settings"],
            "policies": "random mixture sequences: 30% perturbed baselines, 40% field tilts near the top, 30% "
                        "Dirichlet walks, played on 8 env seeds in turn (common random numbers)",
        },
        "model": {"per_domain": True, "ensemble": ENSEMBLE, "seed": SEED,
                  "fit_on": "every episode; the ensemble's other members on bootstrap resamples of the episodes"},
        "fidelity_on_held_out": {
            "how": f"the same per-domain fit on the first {episodes - held_out} episodes, scored on the last "
                   f"{held_out} (docs/results/{fidelity_csv}, experiments/surrogate_fidelity/study.py)",
            **{key: _plain(value) for key, value in fidelity.to_dict().items()},
        },
        "written_by": " && ".join(f"python experiments/reference_surrogate/study.py {step}{field_flag}"
                                  for step in ("run", "report")),
    }
    atomic_write_json(reference.folder / CARD_FILE, card)
    return reference.folder / CARD_FILE


def card_markdown(card: dict, path: Path) -> str:
    """A reference surrogate's card in Markdown: what it is, the trajectories it was fit on, the model, its
    fidelity on held-out episodes, and the whole card.

    Args:
        card: the card :func:`write_card` wrote.
        path: where it was written.
    """
    trajectories, model, fidelity = card["trajectories"], card["model"], card["fidelity_on_held_out"]
    how = "per-domain" if model["per_domain"] else "grouped"
    lines = [f"`{card['env_id']}` with `target_field=\"{card['target_field']}\"`, version `{card['version']}` "
             f"(card: `{path.relative_to(ROOT)}`, `mixing_gym.reference.reference_card()`).", "",
             f"- **Real env**: `{card['real_env']['env_id']}`, preset `{card['real_env']['env_kwargs']['preset']}`.",
             f"- **Trajectories**: {trajectories['episodes']} episodes, {trajectories['dataset']}; "
             f"{trajectories['policies']}.",
             f"- **Collected by**: `{trajectories['collected_by']}`.",
             f"- **Model**: the {how} model with a {model['ensemble']}-member ensemble (seed {model['seed']}), fit on "
             f"{model['fit_on']}.",
             f"- **Fidelity on held-out episodes**: {fidelity['how']}.", "",
             "| one-step R^2 source / target | rollout RMSE source / target | final objective R^2 / Spearman | "
             "near-best episodes: difference RMSE, pairs ordered right |", "|---|---|---|---|",
             f"| {fidelity['one_step_r2_source']:.2f} / {fidelity['one_step_r2_target']:.2f} | "
             f"{fidelity['rollout_rmse_source']:.4f} / {fidelity['rollout_rmse_target']:.4f} | "
             f"{fidelity['final_r2']:.2f} / {fidelity['final_spearman']:.2f} | "
             f"{fidelity['near_best_difference_rmse']:.4f}, {fidelity['near_best_order_agreement']:.0%} of "
             f"{fidelity['near_best_pairs']} |", "",
             f"Written by `{card['written_by']}`. The whole card:", "",
             "```yaml", yaml.safe_dump(card, sort_keys=False, width=110).strip(), "```"]
    return "\n".join(lines) + "\n"


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = ROOT / "docs" / "results" / "reference_surrogate.md"
PAGE_TITLE = "The reference surrogates"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: fit the surrogate; report: write its card")
    parser.add_argument("--target-field", default="math", choices=sorted(VERSIONS),
                        help="the field whose reference surrogate to write (default: %(default)s)")
    parser.add_argument("--refit", action="store_true", help="with run: fit it even where the package holds one")
    args = parser.parse_args()
    folder = reference_surrogate(ENV_ID, args.target_field).folder
    if args.step == "run":
        if args.refit or not (folder / "surrogate.json").exists():
            fit_reference(args.target_field).save(folder)
        size = sum(f.stat().st_size for f in folder.iterdir()) / 1e3
        print(f"{folder}: {size:.0f} kB")
        return
    card = write_card(args.target_field)
    command = shlex.join(["python", "experiments/reference_surrogate/study.py", *sys.argv[1:]])
    text = card_markdown(json.loads(card.read_text()), card)
    print(f"`{command}`\n\n{text}", end="")
    write_result_page(PAGE, PAGE_TITLE, __doc__, __file__, command, text)


if __name__ == "__main__":
    main()
