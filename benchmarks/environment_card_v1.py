"""The DataMixing-v1 environment card: its effects, its headroom in seed-noise units, and rank agreement.

    python benchmarks/environment_card_v1.py --preset small                  # every part, resumable
    python benchmarks/environment_card_v1.py --preset small --part fixed rank  # parts, beside
    python benchmarks/environment_card_v1.py --preset small --part search      # ... this one
    python benchmarks/environment_card_v1.py --preset small --part rescore regmix  # once both are done,
    python benchmarks/environment_card_v1.py --preset small --part schedule        # ... beside this one
    python benchmarks/environment_card_v1.py --preset small --report         # the tables from the CSVs only

Every episode is a real ``DataMixing-v1`` episode (``action_mode="weights"``, one torch thread) and is
appended, as soon as it ends, to ``docs/results/card_v1_<preset>[-<tokens per step>].csv`` (one row per
episode: part, name, seed, preset, the mixture schedule, source, target, balanced, then each task
benchmark's improvement over the base model); a rerun plays only
the missing rows.

- ``fixed``: fixed mixtures (source only, target shares 0.25 / 0.5 / 0.75, target only, uniform over all
  domains, two within-field tilts) on seeds 0 .. ``--seeds - 1``: v0's effects (target gain, forgetting,
  an interior optimum) against seed noise.
- ``search``: the search baseline (``agents.search.MixtureSearch``, Optuna TPE over static mixtures) with
  ``--budget`` real episodes on seed 0 (common random numbers); its trials go to
  ``docs/results/search_v1_<preset>[-<tokens per step>].csv``.
- ``rescore``: the search's best mixture and the best fixed heuristic of ``fixed`` (uniform, or the field ratio
  at its best share) on fresh seeds 1 .. ``--seeds``; headroom = the best's lead over the heuristic over the
  pooled seed-noise std.
- ``schedule``: two schedules whose average is the search's best (its target share 15 points lower, then
  higher, or the reverse) on the same seeds: does a schedule beat its own static average?
- ``regmix``: RegMix fitted on the search's episodes (the same budget, the same runs), re-scored like the best.
- ``task_aware``: mixtures written from the task list, not searched (each task's share on the domains it draws on,
  ``TASK_DOMAINS``), at target shares 25% and 40%, re-scored like the best.
- ``rank``: 12 mixtures (the interior fixed ones and Dirichlet draws, none from the search, so that the part
  runs beside it) on ``--preset`` and ``--large-preset``, seed 0: Spearman rank agreement between proxy sizes.
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
from agents.baselines import RegMix
from agents.search import FixedSchedule, MixtureSearch
from mixing_gym.layout import MixingLayout
from mixing_gym.models import get_preset

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
PARTS = ("fixed", "search", "rescore", "schedule", "regmix", "task_aware", "rank")
#: The columns every row starts with; each task benchmark's improvement follows.
COLUMNS = ("part", "name", "seed", "preset", "schedule", "source", "target", "balanced")


def fixed_mixtures(layout: MixingLayout) -> dict[str, np.ndarray]:
    """The card's fixed mixtures, by name."""
    target = layout.target_mask
    ramp = np.linspace(2.0, 0.5, int(target.sum()))  # favours the first target domains, in domain order

    def tilted(ramp: np.ndarray) -> np.ndarray:
        shares = np.zeros(layout.num_domains)
        shares[~target] = 0.5 / (~target).sum()
        shares[target] = 0.5 * ramp / ramp.sum()
        return shares

    return {"source only": layout.field_mixture(0.0), "target 25%": layout.field_mixture(0.25),
            "target 50%": layout.field_mixture(0.5), "target 75%": layout.field_mixture(0.75),
            "target only": layout.field_mixture(1.0), "uniform": np.full(layout.num_domains, 1.0 / layout.num_domains),
            "50%, first targets heavy": tilted(ramp), "50%, last targets heavy": tilted(ramp[::-1])}


#: What each task benchmark of ``math-v1`` and ``code-v1`` draws on, read off its description (``mixing-gym
#: tasks``): the domains (by name prefix) a practitioner who read the task list would train for it. ``decimals`` is
#: a family no domain holds; basic arithmetic is the nearest one. HumanEval's functions are general Python, as the
#: standard library's modules are.
TASK_DOMAINS = {"passages": ("wikipedia", "news"), "documentation": ("stdlib_docs",), "dialogue": ("dialogue",),
                "licences": ("licenses",), "word_problems": ("math_gsm_symbolic",),
                "equations": ("math_simple_equations",), "decimals": ("math_basic_arithmetic",),
                "humaneval_solutions": ("stdlib_code",), "function_bodies": ("stdlib_code",),
                "assertions": ("stdlib_tests",)}
#: The target shares of the task-aware mixtures: the best field ratio of the fixed part, and nearer the
#: search's best (44%).
TASK_AWARE_SHARES = (0.25, 0.4)


def task_aware_mixture(layout: MixingLayout, target_share: float) -> np.ndarray:
    """A mixture written from the task list rather than searched: each field's share split equally over its
    tasks (those of the layout's task benchmarks that some domain of :data:`TASK_DOMAINS` feeds), each task's
    share equally over the domains it draws on; the other domains get nothing."""
    names = layout.domain_names
    weights = np.zeros(layout.num_domains)
    scored = {spec.name.removeprefix("mg_task_"): spec.field for spec in layout.benchmarks if spec.kind == "task"}
    for field, share in (("source", 1.0 - target_share), ("target", target_share)):
        tasks = [task for task in TASK_DOMAINS if scored.get(task) == field
                 and any(name.startswith(TASK_DOMAINS[task]) for name in names)]
        for task in tasks:
            members = [i for i, name in enumerate(names) if name.startswith(TASK_DOMAINS[task])]
            weights[members] += share / len(tasks) / len(members)
    return weights


def rank_mixtures(layout: MixingLayout, draws: int = 6) -> dict[str, np.ndarray]:
    """The rank part's mixtures: the interior fixed ones and ``draws`` Dirichlet draws (seeded), none from the
    search, so that the part runs beside it; source-only and target-only are left out because any two proxy
    sizes rank those extremes alike."""
    fixed = fixed_mixtures(layout)
    mixtures = {name: fixed[name] for name in fixed if name not in ("source only", "target only")}
    rng = np.random.default_rng(12)
    for index in range(draws):
        mixtures[f"dirichlet {index}"] = rng.dirichlet(np.full(layout.num_domains, 0.5))
    return mixtures


def task_improvements(layout: MixingLayout, observation: np.ndarray) -> dict[str, float]:
    """Each task benchmark's improvement over the base model in ``observation``, by task name: the columns
    that show which task a mixture's score (and its seed noise) comes from."""
    entries = dict(zip(layout.observation_names, observation.tolist()))
    return {spec.name: entries[f"score/{spec.name}"] for spec in layout.benchmarks if spec.kind == "task"}


class Card:
    """The episodes of one preset's card, read from and appended to its CSV."""

    def __init__(self, preset: str, tokens_per_step: int | None = None):
        self.preset = preset
        self.tokens_per_step = tokens_per_step
        label = preset if tokens_per_step is None else f"{preset}-{tokens_per_step}"
        self.path = RESULTS / f"card_v1_{label}.csv"
        self.search_path = RESULTS / f"search_v1_{label}.csv"
        self.reload()
        self._envs: dict[str, gym.Env] = {}

    def reload(self) -> None:
        """Read the CSV again (another process may be playing other parts into it)."""
        self.rows = pd.read_csv(self.path).to_dict("records") if self.path.exists() else []

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
        episode = play_episode(FixedSchedule(plan), env, seed)
        record = episode.record()
        row = {"part": part, "name": name, "seed": seed, "preset": preset,
               "schedule": json.dumps(np.round(plan, 5).tolist()), "source": record["source"],
               "target": record["target"], "balanced": record["balanced"],
               **task_improvements(episode.layout, episode.observations[-1])}
        new = not self.path.exists()
        # A card begun before the task columns existed keeps its header (the new rows' extra columns are dropped).
        fieldnames = list(row) if new else pd.read_csv(self.path, nrows=0).columns.tolist()
        with open(self.path, "a", newline="") as handle:  # one row at once: a killed card loses one episode
            writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.rows.append(row)
        print(f"  {part:8s} {name:28s} seed {seed} {preset}: balanced {row['balanced']:+.4f}", file=sys.stderr,
              flush=True)
        return row

    def frame(self, part: str) -> pd.DataFrame:
        rows = [row for row in self.rows if row["part"] == part]
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(COLUMNS))


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


def shifted_schedule(weights: np.ndarray, layout: MixingLayout, late: bool, shift: float = 0.15) -> np.ndarray:
    """Two phases whose average is ``weights``: the target share ``shift`` lower in the first half and higher in
    the second (``late``), or the other way round; within each field the weights keep their proportions."""
    share = float(weights[layout.target_mask].sum())
    shift = min(shift, share / 2, (1 - share) / 2)
    plan = []
    for step in range(layout.num_steps):
        target_share = share + (shift if (step >= layout.num_steps // 2) == late else -shift)
        plan.append(np.where(layout.target_mask, weights * target_share / share,
                             weights * (1 - target_share) / (1 - share)))
    return np.array(plan)


def run_rescore(card: Card, seeds: int, budget: int) -> None:
    best = run_search(card, budget).best_schedule[0]
    card.reload()
    if card.frame("fixed")["seed"].nunique() < seeds:
        raise RuntimeError(f"The rescore part needs the fixed part on {seeds} seeds first (--part fixed).")
    heuristic = best_heuristic(card)
    weights = fixed_mixtures(MixingLayout.of(card.env(card.preset)))[heuristic]
    for seed in range(1, seeds + 1):
        card.play("rescore", "search best", seed, best)
        card.play("rescore", f"heuristic: {heuristic}", seed, weights)


def run_schedule(card: Card, seeds: int, budget: int) -> None:
    """Two schedules whose average is the search's best, on the rescore's seeds: does a schedule beat it?"""
    best = run_search(card, budget).best_schedule[0]
    layout = MixingLayout.of(card.env(card.preset))
    for seed in range(1, seeds + 1):
        card.play("rescore", "search best, target early", seed, shifted_schedule(best, layout, late=False))
        card.play("rescore", "search best, target late", seed, shifted_schedule(best, layout, late=True))


def run_regmix(card: Card, seeds: int) -> None:
    """RegMix fitted on the search's episodes (the same budget and the same runs), re-scored on fresh seeds."""
    trials = pd.read_csv(card.search_path)
    names = list(MixingLayout.of(card.env(card.preset)).domain_names)
    table = trials.drop(columns="objective").rename(columns={"score": "objective", **{f"weight1/{name}": name
                                                                                       for name in names}})
    regmix = RegMix().fit(table, names, np.random.default_rng(0))
    for seed in range(1, seeds + 1):
        card.play("rescore", "regmix on the search's runs", seed, regmix.best_mixture)


def run_task_aware(card: Card, seeds: int) -> None:
    """The task-aware mixtures on the rescore's seeds: how far above the heuristic a policy can be that no
    search found."""
    layout = MixingLayout.of(card.env(card.preset))
    for share in TASK_AWARE_SHARES:
        for seed in range(1, seeds + 1):
            card.play("rescore", f"task-aware, target {share:.0%}", seed, task_aware_mixture(layout, share))


def run_rank(card: Card, large_preset: str) -> None:
    layout = MixingLayout.of(card.env(card.preset))
    fixed = fixed_mixtures(layout)
    for name, weights in rank_mixtures(layout).items():
        for preset in (card.preset, large_preset):
            # on the card's preset, a fixed mixture's seed-0 episode is the fixed part's: the very same episode
            part = "fixed" if name in fixed and preset == card.preset else "rank"
            card.play(part, name, 0, weights, preset)


def describe_mixture(weights: np.ndarray, layout: MixingLayout, count: int = 3) -> str:
    """A mixture in words: its target share, and the domains it favours and avoids most against uniform."""
    ratio = weights * layout.num_domains
    order = np.argsort(ratio)
    names = layout.domain_names
    favoured = ", ".join(f"{names[i]} {ratio[i]:.1f}x" for i in order[::-1][:count])
    avoided = ", ".join(f"{names[i]} {ratio[i]:.2f}x" for i in order[:count])
    return (f"target share {weights[layout.target_mask].sum():.0%}; favours {favoured}; avoids {avoided} "
            "(weight against uniform's)")


def report(card: Card, large_preset: str) -> None:
    fixed = card.frame("fixed")
    if not len(fixed):
        return
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
    print(f"best fixed mixture: {means.idxmax()} ({means.max():+.4f}); spread best - median of the "
          f"{len(means)} fixed mixtures {means.max() - means.median():+.4f} = "
          f"{(means.max() - means.median()) / noise['balanced']:.1f}x noise")
    if "target only" in stats.index:
        print(f"target-only: target gain {stats.loc['target only', ('target', 'mean')] / noise['target']:.0f}x "
              f"noise, forgetting {-stats.loc['target only', ('source', 'mean')] / noise['source']:.0f}x noise; "
              f"interior optimum: best fixed - target-only "
              f"{(means.max() - means['target only']) / noise['balanced']:.0f}x noise")

    rescore = card.frame("rescore")
    if len(rescore):
        per = rescore.pivot_table(index="seed", columns="name", values="balanced")
        heuristic_name = f"heuristic: {best_heuristic(card)}"
        print(f"\n### Re-scored on fresh seeds {sorted(per.index)} (balanced; paired gap against {heuristic_name})\n")
        # Two noise units: the card's (pooled over the fixed mixtures, target-heavy ones the noisiest) and the
        # seed noise of the two policies compared (pooled std of the policy and the heuristic on these seeds).
        print("| policy | balanced | gap | gap / seed noise | gap / noise of the two | paired std of the gap |\n"
              "|---|---|---|---|---|---|")
        for name in per.columns:
            scores = per[name].dropna()
            if heuristic_name not in per or name == heuristic_name:
                print(f"| {name} | {scores.mean():+.4f} ± {scores.std(ddof=1):.4f} | | | | |")
                continue
            both = per[[name, heuristic_name]].dropna()
            gap = both[name] - both[heuristic_name]
            own_noise = float(np.sqrt((both.std(ddof=1) ** 2).mean()))
            print(f"| {name} | {both[name].mean():+.4f} ± {both[name].std(ddof=1):.4f} | {gap.mean():+.4f} | "
                  f"{gap.mean() / noise['balanced']:.1f}x | {gap.mean() / own_noise:.1f}x | {gap.std(ddof=1):.4f} |")
        if card.search_path.exists():
            trials = pd.read_csv(card.search_path)
            layout = MixingLayout.of(card.env(card.preset))
            columns = [f"weight1/{name}" for name in layout.domain_names]
            best = trials.loc[trials["score"].idxmax(), columns].to_numpy(float)
            print(f"\nthe search's best ({len(trials)} trials, seed 0): {describe_mixture(best, layout)}")

    rank = card.frame("rank")
    if len(rank):
        mixtures = rank_mixtures(MixingLayout.of(card.env(card.preset)))
        small = fixed[(fixed["seed"] == 0) & fixed["name"].isin(mixtures)].assign(preset=card.preset)
        table = pd.concat([small, rank]).pivot_table(index="name", columns="preset", values="balanced").dropna()
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
            elif part == "schedule":
                run_schedule(card, args.seeds, args.budget)
            elif part == "regmix":
                run_regmix(card, args.seeds)
            elif part == "task_aware":
                run_task_aware(card, args.seeds)
            else:
                run_rank(card, args.large_preset)
    print(f"`python benchmarks/environment_card_v1.py {shlex.join(sys.argv[1:])}`")
    report(card, args.large_preset)


if __name__ == "__main__":
    main()
