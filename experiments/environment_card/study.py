"""Environment card (v0): is the mixing effect real? Fixed mixtures x seeds from the base checkpoint.

    python experiments/environment_card/study.py run --preset small --seeds 3     # plays what the CSV lacks
    python experiments/environment_card/study.py report --preset small           # the table and the checks

``run`` continues training the base checkpoint for the preset's whole CPT budget on each fixed mixture, over
several seeds, scores it through lm-eval (:class:`mixing_gym.engine.ProxyRun`, the engine under the env, so no
episode and no observation) and writes one row per (mixture, seed) to ``docs/results/card_v0_<space>_<preset>.csv``:
every raw score, the field aggregates and the balanced objective. ``report`` checks the properties the environment
relies on: forgetting under target-only training, interior mixtures in between, effects far above seed noise, an
interior optimum of the balanced objective, and within-field choices that matter; it exits with 1 where one fails.
It writes them to the study's page, ``docs/results/environment_card.md``. The card's rows were never committed: the
page exists once ``run`` has played them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mixing_gym.domains import DomainSpace, get_domain_space
from mixing_gym.engine import ProxyRun
from mixing_gym.mdp import SOURCE_SCORE, TARGET_SCORE, balanced_objective
from mixing_gym.models import get_preset
from mixing_gym.result_pages import write_result_page
from mixing_gym.storage import upsert_csv

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
KEY = ["space", "preset", "mixture", "seed"]


def results_csv(space: str, preset: str) -> Path:
    """Where a card's rows go: ``docs/results/card_v0_<space>_<preset>.csv``."""
    return RESULTS / f"card_v0_{space}_{preset}.csv"


def fixed_mixtures(space: DomainSpace) -> dict[str, np.ndarray]:
    """The card's fixed mixtures, by name: the field ratios, and two 50:50 mixtures each heavy on one target domain.

    Args:
        space: the domain space.
    """
    target = space.target_names

    def target_heavy(name: str) -> np.ndarray:
        # Half the tokens on the source field (uniform), 80% of the target half on one domain.
        weights = space.field_mixture(0.5)
        weights[space.target_mask] = 0.5 * 0.2 / (len(target) - 1)
        weights[space.index(name)] = 0.5 * 0.8
        return weights

    return {
        "source only": space.field_mixture(0.0),
        "target 25%": space.field_mixture(0.25),
        "target 50%": space.field_mixture(0.5),
        "target 75%": space.field_mixture(0.75),
        "target only": space.field_mixture(1.0),
        f"50%, {target[0]}-heavy": target_heavy(target[0]),
        f"50%, {target[1]}-heavy": target_heavy(target[1]),
    }


def run(space_name: str, preset: str, seeds: int, cache_dir: str | None) -> None:
    """Play the (mixture, seed) runs the CSV lacks, writing each one's row as it ends."""
    path = results_csv(space_name, preset)
    done = set(pd.read_csv(path)[["mixture", "seed"]].itertuples(index=False)) if path.exists() else set()
    mixtures = fixed_mixtures(get_domain_space(space_name))
    lacking = [(name, seed) for name in mixtures for seed in range(seeds) if (name, seed) not in done]
    if not lacking:
        return
    proxy = ProxyRun(space_name, preset, cache_dir)
    for name, seed in lacking:
        proxy.reset(seed)
        for _ in range(proxy.preset.num_steps):
            proxy.train(mixtures[name])
        scores = proxy.evaluate().flat()
        row = {"space": space_name, "preset": preset, "mixture": name, "seed": seed,
               "parameters": proxy.num_parameters, **scores, "balanced": balanced_objective(scores)}
        upsert_csv(path, pd.DataFrame([row]), KEY)
        print(f"  {name:28s} seed {seed}: source {scores[SOURCE_SCORE]:.4f} target {scores[TARGET_SCORE]:.4f}",
              file=sys.stderr, flush=True)


def report(space_name: str, preset: str) -> int:
    """Print the card's table and checks from its CSV; 0 where every check holds, else 1."""
    path = results_csv(space_name, preset)
    rows = pd.read_csv(path)
    mixtures = list(fixed_mixtures(get_domain_space(space_name)))

    def stat(name: str, key: str) -> tuple[float, float]:
        values = rows.loc[rows["mixture"] == name, key]
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

    keys = (SOURCE_SCORE, TARGET_SCORE, "balanced")
    noise = {key: float(np.sqrt(np.mean([stat(n, key)[1] ** 2 for n in mixtures]))) for key in keys}
    print(f"Rows: [{path.name}](docs/results/{path.name}); {rows['parameters'].iloc[0] / 1e6:.2f}M parameters, "
          f"{get_preset(preset).cpt_tokens:,} CPT tokens.\n")
    print("| mixture | source score | target score | balanced objective |\n|---|---|---|---|")
    print("| base checkpoint | 0 | 0 | 0 |")
    for name in mixtures:
        cells = " | ".join("{:.4f} ± {:.4f}".format(*stat(name, key)) for key in keys)
        print(f"| {name} | {cells} |")
    print("\nseed noise (pooled std): " + ", ".join(f"{k} {v:.5f}" for k, v in noise.items()))

    src, tgt = SOURCE_SCORE, TARGET_SCORE
    interior = mixtures[1:4]
    best = max(mixtures, key=lambda n: stat(n, "balanced")[0])
    forgetting = -stat("target only", src)[0]  # the base model scores 0 in both fields
    target_gain = stat("target only", tgt)[0]
    within = abs(stat(mixtures[5], tgt)[0] - stat(mixtures[6], tgt)[0])
    checks = {
        f"target-only raises the target score (+{target_gain:.4f} = {target_gain / noise[tgt]:.0f}x noise)":
            target_gain > 10 * noise[tgt],
        f"target-only forgets (source -{forgetting:.4f} = {forgetting / noise[src]:.0f}x noise)":
            forgetting > 10 * noise[src],
        "interior mixtures sit between the extremes on both scores": all(
            stat("target only", k)[0] <= stat(n, k)[0] <= stat("source only", k)[0] or
            stat("source only", k)[0] <= stat(n, k)[0] <= stat("target only", k)[0]
            for n in interior for k in (src, tgt)),
        "extremes differ by >= 10x seed noise on both scores": all(
            abs(stat("target only", k)[0] - stat("source only", k)[0]) >= 10 * noise[k] for k in (src, tgt)),
        f"best fixed mixture under the balanced objective is interior ({best})":
            best not in ("source only", "target only"),
        f"within-field choice matters (target {within:.4f} = {within / noise[tgt]:.0f}x noise apart)":
            within > 5 * noise[tgt],
    }
    print()
    for text, ok in checks.items():
        print(f"- [{'x' if ok else ' '}] {text}")
    return 0 if all(checks.values()) else 1


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "environment_card.md"
PAGE_TITLE = "Environment card of DataMixing-v0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: play the mixtures; report: table and checks")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--space", default="math")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    if args.step == "run":
        run(args.space, args.preset, args.seeds, args.cache_dir)
        return 0
    if not results_csv(args.space, args.preset).exists():
        print(f"{results_csv(args.space, args.preset)} is missing: play its rows first (python experiments/"
              f"environment_card/study.py run --space {args.space} --preset {args.preset}).", file=sys.stderr)
        return 1
    command = shlex.join(["python", "experiments/environment_card/study.py", *sys.argv[1:]])
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        status = report(args.space, args.preset)
    print(f"`{command}`\n\n{printed.getvalue()}", end="")
    write_result_page(PAGE, PAGE_TITLE, __doc__, __file__, command, printed.getvalue())
    return status


if __name__ == "__main__":
    sys.exit(main())
