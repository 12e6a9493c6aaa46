"""Environment card: is the mixing effect real? Fixed mixtures x seeds from the base checkpoint.

Continues training the base checkpoint for the preset's whole CPT budget on each fixed mixture, over
several seeds, scores it through lm-eval and checks the properties the environment relies on:
forgetting under target-only training, interior mixtures in between, effects far above seed noise,
an interior optimum of the balanced objective, and within-field choices that matter.

    python benchmarks/environment_card.py --preset small --seeds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mixing_gym.engine import ProxyRun
from mixing_gym.mdp import SOURCE_SCORE, TARGET_SCORE, balanced_objective


def fixed_mixtures(space) -> dict[str, np.ndarray]:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--space", default="math")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--output", default=None, help="write the raw results as JSON here")
    args = parser.parse_args()

    run = ProxyRun(args.space, args.preset, args.cache_dir)
    base = run.base_scores
    mixtures = fixed_mixtures(run.space)
    results: dict[str, list[dict]] = {name: [] for name in mixtures}
    started = time.perf_counter()
    for name, weights in mixtures.items():
        for seed in range(args.seeds):
            run.reset(seed)
            for _ in range(run.preset.num_steps):
                run.train(weights)
            scores = run.evaluate().flat()
            scores["balanced"] = balanced_objective(scores)
            results[name].append(scores)
            print(f"  {name:28s} seed {seed}: source {scores[SOURCE_SCORE]:.4f} target {scores[TARGET_SCORE]:.4f}",
                  file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started

    def stat(name: str, key: str) -> tuple[float, float]:
        values = [r[key] for r in results[name]]
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    keys = (SOURCE_SCORE, TARGET_SCORE, "balanced")
    noise = {key: float(np.sqrt(np.mean([stat(n, key)[1] ** 2 for n in mixtures]))) for key in keys}
    print(f"\n`python benchmarks/environment_card.py --preset {args.preset} --space {args.space} --seeds {args.seeds}`"
          f" ({run.num_parameters / 1e6:.2f}M parameters, {run.preset.cpt_tokens:,} CPT tokens,"
          f" {elapsed / 60:.1f} min)\n")
    print("| mixture | source score | target score | balanced objective |\n|---|---|---|---|")
    print("| base checkpoint | 0 | 0 | 0 |")
    for name in mixtures:
        cells = " | ".join("{:.4f} ± {:.4f}".format(*stat(name, key)) for key in keys)
        print(f"| {name} | {cells} |")
    print("\nseed noise (pooled std): " + ", ".join(f"{k} {v:.5f}" for k, v in noise.items()))

    src, tgt = SOURCE_SCORE, TARGET_SCORE
    names = list(mixtures)
    interior = names[1:4]
    best = max(names, key=lambda n: stat(n, "balanced")[0])
    forgetting = -stat("target only", src)[0]  # the base model scores 0 in both fields
    target_gain = stat("target only", tgt)[0]
    within = abs(stat(names[5], tgt)[0] - stat(names[6], tgt)[0])
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
    if args.output:
        Path(args.output).write_text(json.dumps({"base": base, "results": results, "noise": noise}, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
