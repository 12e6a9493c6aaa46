"""The DataMixing-v1 environment card: its effects, its headroom in seed-noise units, and rank agreement.

    python benchmarks/environment_card_v1.py --preset small                  # every part, resumable
    python benchmarks/environment_card_v1.py --preset small --part fixed     # one part (run parts in parallel)
    python benchmarks/environment_card_v1.py --preset small --report         # the tables from the CSVs only

Every episode is a real ``DataMixing-v1`` episode (``action_mode="weights"``, one torch thread) and is
appended, as soon as it ends, to ``docs/results/card_v1_<preset>[-<tokens per step>].csv`` (one row per
episode: part, name, seed, preset, the mixture schedule, source, target, balanced); a rerun plays only
the missing rows.

- ``fixed``: fixed mixtures (source only, target shares 0.25 / 0.5 / 0.75, target only, uniform over all
  domains, two within-field tilts) on seeds 0 .. ``--seeds - 1``: v0's effects (target gain, forgetting,
  an interior optimum) against seed noise.
- ``search``: the search baseline (``agents.search.MixtureSearch``, Optuna TPE over static mixtures) with
  ``--budget`` real episodes on seed 0 (common random numbers); its trials go to
  ``docs/results/search_v1_<preset>[-<tokens per step>].csv``.
- ``rescore``: the search's best mixture and the best fixed heuristic of ``fixed`` (uniform, or the field
  ratio at its best share) on fresh seeds 1 .. ``--seeds``; headroom = their difference over the pooled
  seed-noise std.
- ``rank``: 12 mixtures (spread over the search's trials) on ``--preset`` and ``--large-preset``, seed 0:
  Spearman rank agreement between proxy sizes.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import mixing_gym  # noqa: F401  (registers the envs)
from agents.base import play_episode
from agents.search import FixedSchedule, MixtureSearch
from mixing_gym.layout import MixingLayout
from mixing_gym.models import get_preset

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
PARTS = ("fixed", "search", "rescore", "rank")
COLUMNS = ("part", "name", "seed", "preset", "schedule", "source", "target", "balanced")


def fixed_mixtures(layout: MixingLayout) -> dict[str, np.ndarray]:
    """The card's fixed mixtures, by name."""
    target = layout.target_mask
    tilt = np.where(target, np.linspace(2.0, 0.5, len(target)), 1.0)  # favours the first target domains

    def tilted(weights: np.ndarray, factor: np.ndarray) -> np.ndarray:
        shares = weights * factor
        return np.where(target, shares / shares[target].sum() * 0.5, shares / shares[~target].sum() * 0.5)

    half = layout.field_mixture(0.5)
    return {"source only": layout.field_mixture(0.0), "target 25%": layout.field_mixture(0.25),
            "target 50%": half, "target 75%": layout.field_mixture(0.75), "target only": layout.field_mixture(1.0),
            "uniform": np.full(layout.num_domains, 1.0 / layout.num_domains),
            "50%, first targets heavy": tilted(half, tilt), "50%, last targets heavy": tilted(half, tilt[::-1])}


class Card:
    """The episodes of one preset's card, read from and appended to its CSV."""

    def __init__(self, preset: str, tokens_per_step: int | None = None):
        self.preset = preset
        self.tokens_per_step = tokens_per_step
        label = preset if tokens_per_step is None else f"{preset}-{tokens_per_step}"
        self.path = RESULTS / f"card_v1_{label}.csv"
        self.search_path = RESULTS / f"search_v1_{label}.csv"
        self.rows = pd.read_csv(self.path).to_dict("records") if self.path.exists() else []
        self._envs: dict[str, gym.Env] = {}

    def env(self, preset: str) -> gym.Env:
        if preset not in self._envs:
            self._envs[preset] = gym.make("DataMixing-v1", preset=get_preset(preset), action_mode="weights",
                                          tokens_per_step=self.tokens_per_step, torch_threads=1)
        return self._envs[preset]

    def play(self, part: str, name: str, seed: int, schedule: np.ndarray, preset: str | None = None) -> dict:
        """The recorded episode ``(part, name, seed, preset)``, played now if it is not in the CSV yet."""
        preset = preset or self.preset
        for row in self.rows:
            if (row["part"], row["name"], int(row["seed"]), row["preset"]) == (part, name, seed, preset):
                return row
        env = self.env(preset)
        plan = np.tile(schedule, (MixingLayout.of(env).num_steps, 1)) if np.ndim(schedule) == 1 else schedule
        record = play_episode(FixedSchedule(plan), env, seed).record()
        row = {"part": part, "name": name, "seed": seed, "preset": preset,
               "schedule": json.dumps(np.round(plan, 5).tolist()), "source": record["source"],
               "target": record["target"], "balanced": record["balanced"]}
        new = not self.path.exists()
        with open(self.path, "a", newline="") as handle:  # one row at once: a killed card loses one episode
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.rows.append(row)
        print(f"  {part:8s} {name:28s} seed {seed} {preset}: balanced {row['balanced']:+.4f}", file=sys.stderr,
              flush=True)
        return row

    def frame(self, part: str) -> pd.DataFrame:
        return pd.DataFrame([row for row in self.rows if row["part"] == part], columns=list(COLUMNS))


def run_fixed(card: Card, seeds: int) -> None:
    for name, weights in fixed_mixtures(MixingLayout.of(card.env(card.preset))).items():
        for seed in range(seeds):
            card.play("fixed", name, seed, weights)


def run_search(card: Card, budget: int) -> MixtureSearch:
    return MixtureSearch().learn(card.env(card.preset), budget=budget, seed=0,
                                 table_path=card.search_path)


def best_heuristic(card: Card) -> str:
    """The fixed heuristic with the best mean balanced score: uniform, or a field ratio (target-only included)."""
    fixed = card.frame("fixed")
    heuristics = fixed[fixed["name"].isin(["uniform", "target 25%", "target 50%", "target 75%", "target only"])]
    return str(heuristics.groupby("name")["balanced"].mean().idxmax())


def run_rescore(card: Card, seeds: int, budget: int) -> None:
    search = run_search(card, budget)
    heuristic = best_heuristic(card)
    weights = fixed_mixtures(MixingLayout.of(card.env(card.preset)))[heuristic]
    for seed in range(1, seeds + 1):
        card.play("rescore", "search best", seed, search.best_schedule)
        card.play("rescore", f"heuristic: {heuristic}", seed, weights)


def run_rank(card: Card, large_preset: str) -> None:
    trials = pd.read_csv(card.search_path)
    picks = np.linspace(0, len(trials) - 1, 12).round().astype(int)  # ranks spread over the search's trials
    order = trials.sort_values("score").reset_index(drop=True)
    weight_columns = [c for c in trials.columns if c.startswith("weight1/")]
    for index in picks:
        weights = order.loc[index, weight_columns].to_numpy(float)
        for preset in (card.preset, large_preset):
            card.play("rank", f"trial {int(order.loc[index, 'trial'])}", 0, weights, preset)


def report(card: Card, large_preset: str) -> None:
    fixed = card.frame("fixed")
    if len(fixed):
        stats = fixed.groupby("name", sort=False)[["source", "target", "balanced"]].agg(["mean", "std"])
        noise = {key: float(np.sqrt(np.nanmean(stats[(key, "std")] ** 2))) for key in ("source", "target", "balanced")}
        print(f"\n### Fixed mixtures ({card.preset}, {fixed['seed'].nunique()} seeds; mean ± std over seeds)\n")
        print("| mixture | source | target | balanced |\n|---|---|---|---|")
        for name, row in stats.iterrows():
            print(f"| {name} | " + " | ".join(f"{row[(k, 'mean')]:+.4f} ± {row[(k, 'std')]:.4f}"
                                            for k in ("source", "target", "balanced")) + " |")
        print(f"\nseed noise (pooled std): source {noise['source']:.5f}, target {noise['target']:.5f}, "
              f"balanced {noise['balanced']:.5f}")
        means = stats[("balanced", "mean")]
        print(f"best fixed mixture: {means.idxmax()} ({means.max():+.4f}); target-only gain "
              f"{stats.loc['target only', ('target', 'mean')] / noise['target']:.0f}x noise; forgetting "
              f"{-stats.loc['target only', ('source', 'mean')] / noise['source']:.0f}x noise")
        rescore = card.frame("rescore")
        if len(rescore):
            heuristic_name = f"heuristic: {best_heuristic(card)}"
            per = rescore.pivot_table(index="seed", columns="name", values="balanced")
            if {"search best", heuristic_name} <= set(per.columns):
                per = per[["search best", heuristic_name]].dropna()
                best, heuristic = per["search best"], per.drop(columns="search best").iloc[:, 0]
                gap = float((best - heuristic).mean())
                print(f"\nheadroom on {len(per)} fresh seeds: search best {best.mean():+.4f} vs "
                      f"{per.columns.drop('search best')[0]} {heuristic.mean():+.4f}: {gap:+.4f} = "
                      f"{gap / noise['balanced']:.1f}x the seed-noise std (paired std of the gap "
                      f"{float((best - heuristic).std(ddof=1)) if len(per) > 1 else float('nan'):.4f})")
    rank = card.frame("rank")
    if len(rank):
        table = rank.pivot_table(index="name", columns="preset", values="balanced").dropna()
        if large_preset in table and card.preset in table and len(table) >= 3:
            rho = spearmanr(table[card.preset], table[large_preset]).statistic
            print(f"\nrank agreement of {len(table)} mixtures, {card.preset} vs {large_preset}: Spearman {rho:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--large-preset", default="small-wide", help="the larger proxy of the rank part")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=64, help="real episodes of the search")
    parser.add_argument("--part", choices=PARTS, nargs="+", default=list(PARTS))
    parser.add_argument("--tokens-per-step", type=int, default=None,
                        help="override the preset's (micro's 16 sequences a step cannot resolve 30 domains)")
    parser.add_argument("--report", action="store_true", help="only print the tables from the CSVs")
    args = parser.parse_args()

    card = Card(args.preset, args.tokens_per_step)
    if not args.report:
        for part in args.part:
            if part == "fixed":
                run_fixed(card, args.seeds)
            elif part == "search":
                run_search(card, args.budget)
            elif part == "rescore":
                run_rescore(card, args.seeds, args.budget)
            else:
                run_rank(card, args.large_preset)
    print(f"`python benchmarks/environment_card_v1.py {shlex.join(sys.argv[1:])}`")
    report(card, args.large_preset)


if __name__ == "__main__":
    main()
