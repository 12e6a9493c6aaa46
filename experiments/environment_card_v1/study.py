"""The DataMixing-v1 environment card: its effects, its headroom in seed-noise units, and rank agreement.

    python experiments/environment_card_v1/study.py run --preset small                   # every part, resumable
    python experiments/environment_card_v1/study.py run --preset small --part fixed rank  # parts, beside
    python experiments/environment_card_v1/study.py run --preset small --part search      # ... this one
    python experiments/environment_card_v1/study.py run --preset small --part rescore regmix  # once both are done,
    python experiments/environment_card_v1/study.py run --preset small --part schedule        # ... beside this one
    python experiments/environment_card_v1/study.py report --preset small                # the tables, and the page

Every episode is a real ``DataMixing-v1`` episode (``action_mode="weights"``, one torch thread) played through the
harness (:func:`agents.harness.evaluate_agents`, episode files under ``runs/card-v1/``), and its row goes to
``docs/results/card_v1_<preset>[-<tokens per step>].csv`` as soon as its mixture's episodes end (one row per
episode: part, name, seed, preset, the mixture schedule, source, target, balanced, then each task benchmark's
improvement over the base model); ``run`` plays only the rows the CSV lacks.

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
- ``task_aware``: mixtures written from the task list, not searched (:func:`agents.task_aware.task_aware_mixture`:
  each task's share on the domains it draws on), at target shares 25% and 40%, re-scored like the best.
- ``rank``: 12 mixtures (the interior fixed ones and Dirichlet draws, none from the search, so that the part
  runs beside it) on ``--preset`` and ``--large-preset``, seed 0: Spearman rank agreement between proxy sizes.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from agents.baselines import RegMix
from agents.harness import evaluate_agents
from agents.registry import AgentResources, make_agent
from agents.search import FixedSchedule, MixtureSearch
from agents.task_aware import task_aware_mixture
from mixing_gym.domains import get_domain_space
from mixing_gym.layout import MixingLayout, describe_mixture, field_mixture
from mixing_gym.models import get_preset
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import upsert_csv

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
WORK = ROOT / "runs" / "card-v1"
ENV_ID = "DataMixing-v1"
#: The card's env plays the default field's space.
SPACE = get_domain_space("math-v1")
PARTS = ("fixed", "search", "rescore", "schedule", "regmix", "task_aware", "rank")
#: The columns every row starts with; each task benchmark's improvement follows.
COLUMNS = ("part", "name", "seed", "preset", "schedule", "source", "target", "balanced")
#: The target shares of the task-aware mixtures: the best field ratio of the fixed part, and nearer the
#: search's best (44%).
TASK_AWARE_SHARES = (0.25, 0.4)


def fixed_mixtures(target_mask: np.ndarray) -> dict[str, np.ndarray]:
    """The card's fixed mixtures, by name.

    Args:
        target_mask: which domains of the space are of the target field.
    """
    target = np.asarray(target_mask, dtype=bool)
    ramp = np.linspace(2.0, 0.5, int(target.sum()))  # favours the first target domains, in domain order

    def tilted(ramp: np.ndarray) -> np.ndarray:
        shares = np.zeros(len(target))
        shares[~target] = 0.5 / (~target).sum()
        shares[target] = 0.5 * ramp / ramp.sum()
        return shares

    return {"source only": field_mixture(target, 0.0), "target 25%": field_mixture(target, 0.25),
            "target 50%": field_mixture(target, 0.5), "target 75%": field_mixture(target, 0.75),
            "target only": field_mixture(target, 1.0), "uniform": np.full(len(target), 1.0 / len(target)),
            "50%, first targets heavy": tilted(ramp), "50%, last targets heavy": tilted(ramp[::-1])}


def rank_mixtures(target_mask: np.ndarray, draws: int = 6) -> dict[str, np.ndarray]:
    """The rank part's mixtures: the interior fixed ones and ``draws`` Dirichlet draws (seeded), none from the
    search, so that the part runs beside it; source-only and target-only are left out because any two proxy
    sizes rank those extremes alike.

    Args:
        target_mask: which domains of the space are of the target field.
        draws: how many Dirichlet draws.
    """
    fixed = fixed_mixtures(target_mask)
    mixtures = {name: fixed[name] for name in fixed if name not in ("source only", "target only")}
    rng = np.random.default_rng(12)
    for index in range(draws):
        mixtures[f"dirichlet {index}"] = rng.dirichlet(np.full(len(target_mask), 0.5))
    return mixtures


class Card:
    """The episodes of one preset's card, read from and written to its CSV.

    Args:
        preset: the proxy preset of the card.
        tokens_per_step: overrides the preset's (``None``: the preset's).
    """

    def __init__(self, preset: str, tokens_per_step: int | None = None):
        self.preset = preset
        self.tokens_per_step = tokens_per_step
        self.label = preset if tokens_per_step is None else f"{preset}-{tokens_per_step}"
        self.path = RESULTS / f"card_v1_{self.label}.csv"
        self.search_path = RESULTS / f"search_v1_{self.label}.csv"
        self._layouts: dict[str, MixingLayout] = {}

    def env_kwargs(self, preset: str | None = None) -> dict:
        """The ``gym.make`` arguments of the card's env on ``preset`` (default: the card's)."""
        return {"preset": preset or self.preset, "action_mode": "weights", "tokens_per_step": self.tokens_per_step,
                "torch_threads": 1}

    def layout(self, preset: str | None = None) -> MixingLayout:
        """The layout of the card's env on ``preset`` (made once: it prepares the data and the base model)."""
        preset = preset or self.preset
        if preset not in self._layouts:
            env = gym.make(ENV_ID, **self.env_kwargs(preset))
            self._layouts[preset] = MixingLayout.of(env)
            env.close()
        return self._layouts[preset]

    def frame(self, part: str | None = None) -> pd.DataFrame:
        """The CSV's rows (of ``part``), read anew: another process may be playing other parts into it."""
        rows = pd.read_csv(self.path) if self.path.exists() else pd.DataFrame(columns=list(COLUMNS))
        return rows if part is None else rows[rows["part"] == part]

    def num_steps(self, preset: str | None = None) -> int:
        """The steps of the card's episodes on ``preset`` (default: the card's)."""
        return get_preset(preset or self.preset).num_steps

    def lacking(self, part: str, names: Iterable[str], seeds: Iterable[int], preset: str | None = None
                ) -> dict[str, list[int]]:
        """The seeds of each name whose row ``(part, name, seed, preset)`` the CSV lacks (names with none left out).

        Args:
            part: the card's part (:data:`PARTS`; the rank part's fixed mixtures are rows of ``fixed``).
            names: the mixtures' names.
            seeds: the env seeds each should have.
            preset: the proxy preset (default: the card's).
        """
        rows = self.frame(part)
        done = set(rows.loc[rows["preset"] == (preset or self.preset), ["name", "seed"]].itertuples(index=False))
        lacking = {name: [seed for seed in seeds if (name, seed) not in done] for name in names}
        return {name: name_seeds for name, name_seeds in lacking.items() if name_seeds}

    def play(self, part: str, schedules: dict[str, np.ndarray], seeds: Iterable[int],
             preset: str | None = None) -> None:
        """Play each named mixture (or schedule) on the ``seeds`` whose rows the CSV lacks, and write the rows of
        each mixture's episodes as they end.

        Args:
            part: the card's part the rows belong to.
            schedules: by name, a mixture ``(K,)`` played at every step or a schedule ``(steps, K)``.
            seeds: the env seeds.
            preset: the proxy preset (default: the card's).
        """
        preset = preset or self.preset
        for name, lacking in self.lacking(part, schedules, list(seeds), preset).items():
            schedule = schedules[name]
            plan = np.tile(schedule, (self.num_steps(preset), 1)) if np.ndim(schedule) == 1 else schedule
            key = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{part}-{name}")  # the harness names files by it
            comparison = evaluate_agents({key: FixedSchedule(plan)}, lacking, self.env_kwargs(preset),
                                         WORK / self.label / preset, progress=False, env_id=ENV_ID, write_report=False)
            layout = self.layout(preset)
            played = [{"part": part, "name": name, "seed": seed, "preset": preset,
                       "schedule": json.dumps(np.round(plan, 5).tolist()),
                       **{k: comparison.records[key, seed][k] for k in ("source", "target", "balanced")},
                       **task_improvements(layout, comparison.records[key, seed])} for seed in lacking]
            upsert_csv(self.path, pd.DataFrame(played), ["part", "name", "seed", "preset"])
            for row in played:
                print(f"  {part:8s} {name:28s} seed {row['seed']} {preset}: balanced {row['balanced']:+.4f}",
                      file=sys.stderr, flush=True)

    def search(self, budget: int) -> MixtureSearch:
        """The search's ``budget`` trials on seed 0: read from its CSV, the trials it lacks played first (through
        the registry's search, one at a time) and recorded there."""
        if self.search_path.exists() and len(pd.read_csv(self.search_path)) >= budget:
            return MixtureSearch.from_table(pd.read_csv(self.search_path).iloc[:budget], SPACE.names)
        search = make_agent("search", AgentResources(ENV_ID, self.env_kwargs(), seed=0, runs=budget,
                                                      run_store=WORK / self.label / "search"))
        upsert_csv(self.search_path, search.table, ["trial"])
        return search


def task_improvements(layout: MixingLayout, record: dict) -> dict[str, float]:
    """Each task benchmark's improvement over the base model at the end of an episode, by task name: the columns
    that show which task a mixture's score (and its seed noise) comes from.

    Args:
        layout: the env's layout.
        record: the episode's record (:meth:`agents.base.PlayedEpisode.record`).
    """
    improvements = layout.scores(record["steps"][-1]["scores"]).improvements
    return {spec.name: improvements[spec.name] for spec in layout.benchmarks if spec.kind == "task"}


def run_fixed(card: Card, seeds: int) -> None:
    card.play("fixed", fixed_mixtures(SPACE.target_mask), range(seeds))


def best_heuristic(card: Card) -> str:
    """The fixed heuristic with the best mean balanced score: uniform, or a field ratio (target-only included)."""
    fixed = card.frame("fixed")
    heuristics = fixed[fixed["name"].isin(["uniform", "target 25%", "target 50%", "target 75%", "target only"])]
    return str(heuristics.groupby("name")["balanced"].mean().idxmax())


def shifted_schedule(weights: np.ndarray, target_mask: np.ndarray, num_steps: int, late: bool,
                     shift: float = 0.15) -> np.ndarray:
    """Two phases whose average is ``weights``: the target share ``shift`` lower in the first half and higher in
    the second (``late``), or the other way round; within each field the weights keep their proportions.

    Args:
        weights: the static mixture.
        target_mask: which domains are of the target field.
        num_steps: the episode's steps.
        late: the target share is higher in the second half.
        shift: how far the target share moves (at most half of each field's share).
    """
    share = float(weights[target_mask].sum())
    shift = min(shift, share / 2, (1 - share) / 2)
    plan = []
    for step in range(num_steps):
        target_share = share + (shift if (step >= num_steps // 2) == late else -shift)
        plan.append(np.where(target_mask, weights * target_share / share, weights * (1 - target_share) / (1 - share)))
    return np.array(plan)


def run_rescore(card: Card, seeds: int, budget: int) -> None:
    best = card.search(budget).best_schedule[0]
    if card.frame("fixed")["seed"].nunique() < seeds:
        raise RuntimeError(f"The rescore part needs the fixed part on {seeds} seeds first (--part fixed).")
    heuristic = best_heuristic(card)
    card.play("rescore", {"search best": best, f"heuristic: {heuristic}": fixed_mixtures(SPACE.target_mask)[heuristic]},
              range(1, seeds + 1))


def run_schedule(card: Card, seeds: int, budget: int) -> None:
    """Two schedules whose average is the search's best, on the rescore's seeds: does a schedule beat it?"""
    best = card.search(budget).best_schedule[0]
    steps = card.num_steps()
    card.play("rescore", {"search best, target early": shifted_schedule(best, SPACE.target_mask, steps, late=False),
                          "search best, target late": shifted_schedule(best, SPACE.target_mask, steps, late=True)},
              range(1, seeds + 1))


def run_regmix(card: Card, seeds: int, budget: int) -> None:
    """RegMix fitted on the search's episodes (the same budget and the same runs), re-scored on fresh seeds."""
    names = SPACE.names
    regmix = RegMix().fit(card.search(budget).runs_table(), names, np.random.default_rng(0))
    card.play("rescore", {"regmix on the search's runs": regmix.best_mixture}, range(1, seeds + 1))


def run_task_aware(card: Card, seeds: int) -> None:
    """The task-aware mixtures on the rescore's seeds: how far above the heuristic a policy can be that no
    search found."""
    names = {f"task-aware, target {share:.0%}": share for share in TASK_AWARE_SHARES}
    if card.lacking("rescore", names, range(1, seeds + 1)):  # the mixtures need the env's layout: made only then
        layout = card.layout()
        card.play("rescore", {name: task_aware_mixture(layout, share) for name, share in names.items()},
                  range(1, seeds + 1))


def run_rank(card: Card, large_preset: str) -> None:
    fixed = fixed_mixtures(SPACE.target_mask)
    mixtures = rank_mixtures(SPACE.target_mask)
    # On the card's preset, a fixed mixture's seed-0 episode is the fixed part's: the very same episode.
    card.play("fixed", {name: weights for name, weights in mixtures.items() if name in fixed}, [0])
    card.play("rank", {name: weights for name, weights in mixtures.items() if name not in fixed}, [0])
    card.play("rank", mixtures, [0], large_preset)


def report(card: Card, large_preset: str) -> None:
    """Print the card's tables from its CSVs (no env needed)."""
    fixed = card.frame("fixed")
    if not len(fixed):
        return
    print(f"Rows: [{card.path.name}](docs/results/{card.path.name}), one per episode"
          + (f"; the search's trials: [{card.search_path.name}](docs/results/{card.search_path.name})."
             if card.search_path.exists() else "."))
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
            best = trials.loc[trials["score"].idxmax(), [f"weight1/{name}" for name in SPACE.names]].to_numpy(float)
            print(f"\nthe search's best ({len(trials)} trials, seed 0): "
                  f"{describe_mixture(best, SPACE.names, SPACE.target_mask)}")

    rank = card.frame("rank")
    if len(rank):
        mixtures = rank_mixtures(SPACE.target_mask)
        small = fixed[(fixed["seed"] == 0) & fixed["name"].isin(mixtures)].assign(preset=card.preset)
        table = pd.concat([small, rank]).pivot_table(index="name", columns="preset", values="balanced").dropna()
        if large_preset in table and card.preset in table and len(table) >= 3:
            rho = spearmanr(table[card.preset], table[large_preset]).statistic
            print(f"\nrank agreement of {len(table)} mixtures, {card.preset} vs {large_preset}: Spearman {rho:.2f}")


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "environment_card_v1.md"
PAGE_TITLE = "Environment card of DataMixing-v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: play what the CSVs lack; report: the tables")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--large-preset", default="small-wide", help="the larger proxy of the rank part")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=64, help="real episodes of the search")
    parser.add_argument("--part", choices=PARTS, nargs="+", default=list(PARTS), help="the parts to run")
    parser.add_argument("--tokens-per-step", type=int, default=None,
                        help="override the preset's (micro's 16 sequences a step cannot resolve 30 domains)")
    args = parser.parse_args()

    card = Card(args.preset, args.tokens_per_step)
    if args.step == "report":
        command = shlex.join(["python", "experiments/environment_card_v1/study.py", *sys.argv[1:]])
        publish_report(lambda: report(card, args.large_preset), PAGE, PAGE_TITLE, __doc__, __file__, command)
        return
    for part in args.part:
        if part == "fixed":
            run_fixed(card, args.seeds)
        elif part == "search":
            card.search(args.budget)
        elif part == "rescore":
            run_rescore(card, args.seeds, args.budget)
        elif part == "schedule":
            run_schedule(card, args.seeds, args.budget)
        elif part == "regmix":
            run_regmix(card, args.seeds, args.budget)
        elif part == "task_aware":
            run_task_aware(card, args.seeds)
        else:
            run_rank(card, args.large_preset)


if __name__ == "__main__":
    main()
