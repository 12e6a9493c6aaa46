"""Agents that transfer: trajectories of several math spaces, so that an agent cannot know a domain by its index.

    python experiments/transfer_v1/study.py collect     # 64 episodes a space; resumable, a space at a time
    python experiments/transfer_v1/study.py collect --spaces math-v1-family-subset --workers 2
    python experiments/transfer_v1/study.py collect --rules   # 16 episodes of random descriptor rules a space
    python experiments/transfer_v1/study.py validate    # leave one space out: does the descriptor model transfer?
    python experiments/transfer_v1/study.py probe --setting b --seeds 6 7   # zero-run agents, validation seeds
    python experiments/transfer_v1/study.py probe --setting b --with-rules  # their learners on the rule episodes too
    python experiments/transfer_v1/study.py cost --setting b                # RegMix and the search at 8, 16, 32 runs
    python experiments/transfer_v1/study.py report      # the tables and the results page, from the CSVs

``collect`` records ``--episodes`` (64) real ``DataMixing-v1`` ``small`` episodes on each further training space of
the transfer agent (``mixing_gym.domains.TRANSFER_TRAINING_SPACES``: ``math-v1``'s source corpora clustered another
way, its problem families merged, a subset of them) with the plan of the reference trajectories (30% perturbed
baselines, 40% field tilts near the top, 30% Dirichlet walks, 8 env seeds in turn, collection seed 0), into the
package beside them (``mixing_gym/reference/trajectories-<space>-small``,
:func:`mixing_gym.reference.transfer_trajectories`), through ``mixing-gym collect`` (each finished episode is
committed at once: a killed run resumes where it stopped), then writes one row per episode to
``docs/results/collection_<space>-small.csv`` (``experiments/collection_summary/study.py run``). A space's first
episode prepares its data and base model (about ten minutes on two cores); an episode takes about 70 s a worker.

``collect --rules`` records ``--episodes`` (16) more episodes on every training space, ``math-v1`` included, each a
random mixing rule over the domains' descriptors held for the episode (``mixing-gym collect --rule-share 1``:
a target share in [0.1, 0.6], each field's domains weighted by a softmax of random coefficients on their
descriptors, DSIR's mixture and its opposites among them; the same 8 env seeds), into
``mixing_gym/reference/rule-episodes-<space>-small`` (:func:`mixing_gym.reference.rule_episodes`). The reference
plan's episodes seldom vary how much of a field goes to the domains that look like its tasks apart from the field's
share (the descriptor model ranks held-out spaces no better than one that knows the fields only, below); these do.
``probe --with-rules`` trains the learners on them too (their rows' agent names end in ``-rules``); the package's
transfer agents do not read them (the probes below: they help on the code field and the unseen source field, hurt on
``math-v1`` and the unseen space, and on no zero-run setting lift a learner clear of DSIR).

What stays out of every training set (the headline's transfer settings): the whole source corpora of
``math-v1-whole-corpora`` (setting (b)), the code field (d), and the code of installed packages and the standard
library's tests (kept for an unseen source field).

``validate`` measures, with no run at all, whether what the descriptor model (:class:`agents.transfer.DescriptorModel`)
learns on some spaces holds on another: for each training space whose trajectories are there, the model is fit on the
others' and ranks the held-out space's episodes by the balanced score it predicts for them (Spearman against their
real final balanced score; and the mean score of the 8 episodes it ranks first, against the space's mean and best).
Two variants: every input (the fields and the domains' importance toward each task), and the fields only (what an
agent without descriptors can know); where every space's rule episodes are there, each variant once more with the
other spaces' rule episodes in the fit too (``+ rules``, what ``probe --with-rules`` trains on). And the model fit on
every space's plan episodes ranks each space's rule episodes (``<space> rules``): mixtures it has seen nothing like.
One row per (held-out space, variant) in ``docs/results/transfer_loso.csv``.

``probe`` plays the zero-run agents on a transfer setting's real env (``small``), on validation seeds (6 .. 8; the
headline scores seeds 1 .. 5): DSIR (``dsir@0.25``), the descriptor planner (its rule planned on the env's domains),
``transfer_rule`` (the same model, its rule planned once on the training spaces' domains) and the transfer Data Mixing
Agent, trained on the training spaces whose trajectories are there (the agents' seed is the env seed), and the best
fixed heuristic of the environment card (``fixed_ratio@0.25``) as the yardstick on the same seeds. Settings: (a)
``math-v1`` (a training space), (b) ``math-v1-whole-corpora``, (d) the code field, (f) ``math-v1-code-source`` (an
unseen source field). Episodes are kept under ``runs/transfer-v1/probe-<setting>`` (a killed probe resumes); one row
per (setting, agent, seed) in ``docs/results/transfer_probe.csv``. A probe, not the headline: it says whether an
agent is worth the headline's runs.

``cost`` measures what the baselines that learn from real runs of the new setting get for fewer of them: RegMix fit
on the first 8, 16 and 32 of its 64 committed proxy runs of the setting (``regmix_runs_v1_small_unseen_space.csv``,
``regmix_runs_v1_small_code.csv``; as a RegMix of that budget would have drawn them), and the search's best of its
first 8, 16 and 32 trials (``search_v1_small_unseen_space.csv``, ``search_v1_small_code.csv``), each played on the
headline's env seeds 1 .. 5 of (b) or (d) (a schedule that two budgets share, as the search's best trial often is,
plays once); at 64 runs their headline rows (``regmix_own_64``, ``search_64`` of ``headline_v1_small.csv``) are the
same plans on the same seeds, and at 0 runs stand the zero-run agents' headline rows (DSIR and the transfer agents).
One row per (setting, method, runs, seed) in ``docs/results/transfer_cost.csv``.

``report`` reads the CSVs only: per space, its domains, its episodes and their final balanced scores; the
leave-one-space-out table; the issue's goal setting by setting from the headline's rows (``experiments/headline_v1``
plays the transfer agents and DSIR on seeds 1 .. 5 of every setting); the cost axis (table and
``docs/transfer_v1_cost.png``); what the zero-run agents choose per domain against its descriptors and per step
(``docs/transfer_v1_choices.png``, from the headline's steps); the probes.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

from agents.backends import Backend
from agents.base import Agent
from agents.baselines import RegMix
from agents.cli import main as mixing_gym
from agents.harness import evaluate_agents, mean_ci
from agents.offline import named_offline_config, train_offline_agent
from agents.registry import make_agent
from agents.search import FixedSchedule, MixtureSearch
from agents.transfer import FEATURES, DescriptorModel, DescriptorPlanner, TaskView, episode_table
from mixing_gym.benchmark_data import TASK_BENCHMARKS, task_benchmark_name
from mixing_gym.descriptors import importance_name, standardised
from mixing_gym.domains import TRANSFER_TRAINING_SPACES, get_domain_space
from mixing_gym.reference import REFERENCE_TRAJECTORIES, rule_episodes, transfer_trajectories
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import upsert_csv
from mixing_gym.trajectories import load_trajectories

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
#: The reference trajectories' collection plan (experiments/reference_surrogate: PLAN_FLAGS).
PLAN_FLAGS = ["--baseline-share", "0.3", "--tilt-share", "0.4", "--seed-pool", "8", "--seed", "0"]
#: The rule episodes' plan: every episode a random descriptor rule, on the reference plan's 8 env seeds.
RULE_PLAN_FLAGS = ["--baseline-share", "0", "--rule-share", "1", "--seed-pool", "8", "--seed", "0"]
#: The spaces the rule episodes are collected on: every training space.
RULE_SPACES = ("math-v1", *TRANSFER_TRAINING_SPACES)
LOSO_CSV = RESULTS / "transfer_loso.csv"
PROBE_CSV = RESULTS / "transfer_probe.csv"
WORK = ROOT / "runs" / "transfer-v1"
#: The settings a probe plays: the env's arguments (the headline's, and (f), the unseen source field).
SETTINGS = {"a": {"preset": "small"}, "b": {"preset": "small", "space": "math-v1-whole-corpora"},
            "d": {"preset": "small", "target_field": "code"}, "f": {"preset": "small", "space": "math-v1-code-source"}}
PROBE_AGENTS = ("dsir", "descriptor_planner", "transfer_rule", "dma_transfer", "fixed_ratio_25")
#: The probe's agents that learn from the training spaces' trajectories.
LEARNERS = ("descriptor_planner", "transfer_rule", "dma_transfer")
#: What ends the name of a learner trained on the rule episodes too (an agent's name names its episode files).
RULES_SUFFIX = "-rules"
COST_CSV = RESULTS / "transfer_cost.csv"
HEADLINE_CSV = RESULTS / "headline_v1_small.csv"
#: The cost axis's settings: their space, RegMix's proxy runs and the search's trials on it (experiments/headline_v1),
#: and their name in the headline's CSV.
COST_SETTINGS = {
    "b": ("math-v1-whole-corpora", "regmix_runs_v1_small_unseen_space.csv", "search_v1_small_unseen_space.csv",
          "b_unseen_space"),
    "d": ("code-v1", "regmix_runs_v1_small_code.csv", "search_v1_small_code.csv", "d_code_field"),
}
#: Runs spent on the setting that the cost axis plays (64: the headline's own rows).
BUDGETS = (8, 16, 32)
#: The seed RegMix's proxy runs were drawn with (experiments/headline_v1: REGMIX_SEED).
REGMIX_SEED = 100
HEADLINE_SEEDS = (1, 2, 3, 4, 5)
HEADLINE_STEPS_CSV = RESULTS / "headline_v1_small_steps.csv"
#: Every domain's descriptors (experiments/domain_descriptors), for the figure of what the agents choose.
DESCRIPTORS_CSV = RESULTS / "domain_descriptors_data.csv"
#: The headline's settings (their name in its CSV) where the transfer agents play with no run of the setting's own,
#: and their domain space; then those whose domains they were trained on ((c): another model size).
ZERO_RUN_SETTINGS = {"b": ("b_unseen_space", "math-v1-whole-corpora"), "d": ("d_code_field", "code-v1"),
                     "f": ("f_unseen_source", "math-v1-code-source")}
SEEN_SETTINGS = {"a": "a_training", "c": "c_unseen_size"}
#: The transfer agents (experiments/headline_v1: TRANSFER) and the zero-run baseline beside them.
TRANSFER_AGENTS = ("descriptor_planner", "transfer_rule", "dma_transfer")
ZERO_RUN_AGENTS = ("dsir", *TRANSFER_AGENTS)
COST_FIGURE = ROOT / "docs" / "transfer_v1_cost.png"
CHOICES_FIGURE = ROOT / "docs" / "transfer_v1_choices.png"
#: The descriptor model's variants in ``validate``: which of its inputs it reads.
VARIANTS = {"descriptors": FEATURES,
            "fields only": tuple(name for name in FEATURES if "task" not in name.replace("is_target_task", ""))}
#: How many of the held-out space's episodes the model picks (their mean score is reported).
PICKED = 8
PAGE = RESULTS / "transfer_v1.md"
PAGE_TITLE = "Agents that transfer"


def collection_csv(folder: Path) -> Path:
    """The per-episode rows of a trajectory folder (``experiments/collection_summary``'s naming)."""
    return RESULTS / f"collection_{folder.name.removeprefix('trajectories-')}.csv"


def collection_folder(space: str, rules: bool = False) -> Path:
    """Where ``space``'s trajectories are collected (``rules``: its rule episodes)."""
    return rule_episodes(space) if rules else transfer_trajectories(space)


def collect_command(space: str, episodes: int, workers: int, rules: bool = False) -> list[str]:
    """The ``mixing-gym collect`` command that records (or continues) ``space``'s trajectories (``rules``: its rule
    episodes)."""
    folder = collection_folder(space, rules)
    resume = ["--resume"] if (folder / "data").is_dir() else []
    return ["mixing-gym", "collect", "--env", "DataMixing-v1", "--space", space, "--preset", "small", "--episodes",
            str(episodes), "--workers", str(workers), "--output", str(folder),
            *(RULE_PLAN_FLAGS if rules else PLAN_FLAGS), *resume]


def collect(spaces: list[str], episodes: int, workers: int, rules: bool = False) -> None:
    """Collect (or continue) each space's trajectories (``rules``: its rule episodes), then write its per-episode
    rows."""
    for space in spaces:
        command = collect_command(space, episodes, workers, rules)
        print("$", shlex.join(command), flush=True)
        if mixing_gym(command[1:]) != 0:
            raise SystemExit(f"`{shlex.join(command)}` failed; rerun this step to resume it.")
        folder = collection_folder(space, rules).relative_to(ROOT)
        subprocess.run([sys.executable, "experiments/collection_summary/study.py", "run", "--trajectories",
                        str(folder)], cwd=ROOT, check=True)


def training_spaces(with_rules: bool = False) -> dict[str, list[Path]]:
    """Every training space whose trajectories are there, with their folders: ``math-v1``'s reference ones and the
    further spaces'; with ``with_rules``, each space's rule episodes too where they are there."""
    further = {space: transfer_trajectories(space) for space in TRANSFER_TRAINING_SPACES}
    spaces = {"math-v1": [REFERENCE_TRAJECTORIES], **{s: [f] for s, f in further.items() if (f / "data").is_dir()}}
    if with_rules:
        for space, folders in spaces.items():
            if (rule_episodes(space) / "data").is_dir():
                folders.append(rule_episodes(space))
    return spaces


def validate() -> None:
    """Fit the descriptor model on all training spaces but one, rank the held-out one's episodes; the same fit on the
    other spaces' rule episodes too (variants ``<variant> + rules``, where every space has them); then, fit on every
    space's plan episodes, rank each space's rule episodes (``<space> rules``); rows to the CSV."""
    spaces = {space: [load_trajectories(folder) for folder in folders]
              for space, folders in training_spaces(with_rules=True).items()}
    if len(spaces) < 2:
        raise SystemExit("validate needs the trajectories of two spaces at least; run `collect` first.")
    plans = {space: datasets[0] for space, datasets in spaces.items()}
    with_rules = all(len(datasets) > 1 for datasets in spaces.values())
    held_out = []  # (held-out name, its episodes, suffix of the variant, the fit's datasets)
    for space, plan in plans.items():
        others = [other for name, other in plans.items() if name != space]
        held_out.append((space, plan, "", others))
        if with_rules:
            others_rules = [rules for name, datasets in spaces.items() if name != space for rules in datasets[1:]]
            held_out.append((space, plan, " + rules", others + others_rules))
    held_out += [(f"{space} rules", datasets[1], "", list(plans.values()))
                 for space, datasets in spaces.items() if len(datasets) > 1]
    rows = []
    for name, dataset, suffix, others in held_out:
        features, _, scores = episode_table(dataset)
        view = TaskView(dataset.layout)
        for variant, inputs in VARIANTS.items():
            predicted = view.balanced(DescriptorModel.fit(others, inputs).improvements(features))
            rows.append({"held_out_space": name, "variant": variant + suffix,
                         "training_spaces": len(plans) - (name in plans),
                         "training_episodes": sum(len(d.episodes) for d in others), "episodes": len(scores),
                         "spearman": spearmanr(predicted, scores).statistic,
                         "picked_mean": scores[np.argsort(-predicted)[:PICKED]].mean(),
                         "space_mean": scores.mean(), "space_best": scores.max()})
    upsert_csv(LOSO_CSV, pd.DataFrame(rows), ["held_out_space", "variant"])


def probe_agents(names: list[str], seed: int, with_rules: bool = False) -> dict[str, Agent]:
    """The zero-run agents ``names``, those that learn trained with ``seed`` on every training space there is (with
    ``with_rules``, on the rule episodes too, their names ending in ``-rules``)."""
    folders = [folder for space in training_spaces(with_rules).values() for folder in space]
    agents: dict[str, Agent] = {}
    for name in names:
        learner = name in LEARNERS
        if with_rules and not learner:
            continue  # nothing of theirs changes with the rule episodes: their rows are there already
        key = f"{name}{RULES_SUFFIX}" if with_rules else name
        if name in ("dsir", "fixed_ratio_25"):
            agents[key] = make_agent({"dsir": "dsir@0.25", "fixed_ratio_25": "fixed_ratio@0.25"}[name])
        elif name in ("descriptor_planner", "transfer_rule"):
            plan_on = "env" if name == "descriptor_planner" else "training"
            agents[key] = DescriptorPlanner(seed=seed, plan_on=plan_on).learn(folders)
        else:
            agents[key] = train_offline_agent(folders, named_offline_config("transfer"), seed=seed)[0]
    return agents


def probe(setting: str, names: list[str], seeds: list[int], with_rules: bool = False, workers: int = 1) -> None:
    """Play the agents on ``setting``'s real env, one episode a seed, ``workers`` episodes at once; rows to
    :data:`PROBE_CSV`, with the training spaces and episodes of those that learn (an agent's episode is cached by name
    and seed: delete ``runs/transfer-v1/probe-<setting>/episodes/<agent>__seed<seed>.json`` to play it again after
    more data)."""
    torch.set_num_threads(1)
    backend = Backend(workers=workers) if workers > 1 else None
    spaces = training_spaces(with_rules)
    episodes = sum(len(load_trajectories(folder).episodes) for folders in spaces.values() for folder in folders)
    rows = []
    for seed in seeds:
        comparison = evaluate_agents(probe_agents(names, seed, with_rules), [seed], SETTINGS[setting],
                                     WORK / f"probe-{setting}", progress=False, write_report=False, backend=backend)
        for row in comparison.episodes.to_dict("records"):
            learns = row["agent"].removesuffix(RULES_SUFFIX) in LEARNERS
            rows.append({"setting": setting, "agent": row["agent"], "seed": seed,
                         "training_spaces": len(spaces) if learns else 0,
                         "training_episodes": episodes if learns else 0, "source": row["source"],
                         "target": row["target"], "balanced": row["balanced"], "target_share": row["target_share"]})
    upsert_csv(PROBE_CSV, pd.DataFrame(rows), ["setting", "agent", "seed"])


def cost_plans(setting: str) -> dict[str, np.ndarray]:
    """The schedules of RegMix and the search after each budget of :data:`BUDGETS` runs of ``setting``."""
    space, regmix_runs, search_trials, _ = COST_SETTINGS[setting]
    names = get_domain_space(space).names
    runs, trials = pd.read_csv(RESULTS / regmix_runs), pd.read_csv(RESULTS / search_trials)
    num_steps = int(trials["num_steps"].iloc[0])
    plans = {}
    for budget in BUDGETS:
        regmix = RegMix.from_runs(runs.iloc[:budget], names, seed=REGMIX_SEED)
        plans[f"regmix_{budget}"] = np.tile(regmix.best_mixture, (num_steps, 1))
        plans[f"search_{budget}"] = MixtureSearch.from_table(trials.iloc[:budget], names).best_schedule
    return plans


def cost(setting: str, seeds: list[int]) -> None:
    """Play every plan of :func:`cost_plans` on ``setting``'s env seeds; rows to :data:`COST_CSV`."""
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):  # LightGBM and numpy's pools spin on the shared cores
        plans = cost_plans(setting)
    # The search's best of its first 8 trials is often its best of 32 too: a schedule plays once, under its first name.
    first_name = {}
    for name, schedule in plans.items():
        first_name.setdefault(schedule.tobytes(), name)
    agents = {name: FixedSchedule(plans[name]) for name in dict.fromkeys(first_name.values())}
    comparison = evaluate_agents(agents, seeds, SETTINGS[setting], WORK / f"cost-{setting}", progress=False,
                                 write_report=False)
    played = {(row["agent"], row["seed"]): row["balanced"] for row in comparison.episodes.to_dict("records")}
    rows = []
    for name, schedule in plans.items():
        method, _, runs = name.rpartition("_")
        rows += [{"setting": setting, "method": method, "runs": int(runs), "seed": seed,
                  "balanced": played[first_name[schedule.tobytes()], seed]} for seed in seeds]
    upsert_csv(COST_CSV, pd.DataFrame(rows), ["setting", "method", "runs", "seed"])


def cost_table() -> pd.DataFrame:
    """Mean and 95% interval (``half``) of each (setting, method, runs): :data:`COST_CSV`'s rows, the headline's at
    64 runs, and the zero-run agents' headline rows at 0."""
    rows = pd.read_csv(COST_CSV)
    headline = pd.read_csv(HEADLINE_CSV)
    for setting, (*_, name) in COST_SETTINGS.items():
        for method, agent, runs in (("regmix", "regmix_own_64", 64), ("search", "search_64", 64),
                                    *((agent, agent, 0) for agent in ZERO_RUN_AGENTS)):
            played = headline[(headline["setting"] == name) & (headline["agent"] == agent)]
            rows = pd.concat([rows, pd.DataFrame({"setting": setting, "method": method, "runs": runs,
                                                  "seed": played["seed"], "balanced": played["balanced"]})])
    return pd.DataFrame([{"setting": setting, "method": method, "runs": runs, "seeds": len(group),
                          **dict(zip(("mean", "half"), mean_ci(group["balanced"])))}
                         for (setting, runs, method), group in rows.groupby(["setting", "runs", "method"])])


def plot_cost(table: pd.DataFrame) -> None:
    """The cost axis: balanced score against the real runs spent on the setting, a panel per setting."""
    import matplotlib.pyplot as plt

    settings = sorted(table["setting"].unique())
    figure, axes = plt.subplots(1, len(settings), figsize=(4.6 * len(settings), 3.4), squeeze=False)
    for axis, setting in zip(axes[0], settings):
        rows = table[table["setting"] == setting]
        for method, group in rows.groupby("method", sort=False):
            group = group.sort_values("runs")
            style = {"marker": "o", "capsize": 3} if len(group) > 1 else {"marker": "s", "capsize": 3, "ls": "none"}
            axis.errorbar(group["runs"], group["mean"], yerr=group["half"], label=method, **style)
        axis.set_xscale("symlog", linthresh=8)
        axis.set_xticks([0, *BUDGETS, 64], labels=["0", *map(str, BUDGETS), "64"])
        axis.set_title(f"({setting}) {COST_SETTINGS[setting][3]}")
        axis.set_xlabel("real runs spent on the setting")
        axis.set_ylabel("final balanced score (mean, 95% CI)")
    axes[0][-1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(COST_FIGURE, dpi=120)
    plt.close(figure)


def goal_table() -> pd.DataFrame:
    """The issue's goal, setting by setting, from the headline's rows: in the zero-run settings, whether a transfer
    agent's 95% interval lies above the best baseline's mean (DSIR and RegMix on the setting's own runs included);
    in the settings of its training domains, whether its mean reaches the planner's interval."""
    headline = pd.read_csv(HEADLINE_CSV)
    rows = []
    for key, name in {**SEEN_SETTINGS, **{key: name for key, (name, _) in ZERO_RUN_SETTINGS.items()}}.items():
        played = headline[headline["setting"] == name]
        baselines = played[played["group"] == "baseline"].groupby("agent")["balanced"].mean()
        for agent in TRANSFER_AGENTS:
            episodes = played.loc[played["agent"] == agent, "balanced"]
            if episodes.empty or baselines.empty:
                continue
            mean, half = mean_ci(episodes)
            if key in SEEN_SETTINGS:
                bar, low = mean_ci(played.loc[played["agent"] == "planner", "balanced"])
                goal, met = f"within the planner's interval or above ({bar:+.4f} ± {low:.4f})", mean >= bar - low
            else:
                best = baselines.idxmax()
                goal, met = f"interval above the best baseline's mean ({best} {baselines[best]:+.4f})", \
                    mean - half > baselines[best]
            others = baselines.drop("dsir", errors="ignore")
            rows.append({"setting": key, "agent": agent, "seeds": len(episodes),
                         "balanced": f"{mean:+.4f} ± {half:.4f}", "goal": goal, "met": "yes" if met else "no",
                         "best baseline but DSIR": f"{others.idxmax()} {others.max():+.4f}"})
    return pd.DataFrame(rows)


def field_importance(data: pd.DataFrame, space: str) -> pd.Series:
    """Each domain of ``space``: its importance toward the task benchmarks of its own field (standardised over the
    space's domains, averaged over those tasks), from ``data``, the rows of :data:`DESCRIPTORS_CSV`; the descriptor
    DSIR weighs by."""
    domains = get_domain_space(space)
    data = data[data["space"] == space]
    tasks = [name for name in domains.benchmarks if task_benchmark_name(f"mg_task_{name}")]
    table = data.pivot(index="domain", columns="descriptor", values="value").loc[domains.names]
    importance = standardised(table[[importance_name(f"mg_task_{name}") for name in tasks]].to_numpy())
    fields = np.array([TASK_BENCHMARKS[name].field_in(domains.target_field) for name in tasks])
    own = np.array([importance[row, fields == field].mean() for row, field in enumerate(domains.fields)])
    return pd.Series(own, index=domains.names)


def plot_choices(steps: pd.DataFrame) -> list[str]:
    """What the zero-run agents choose in the zero-run settings: each domain's share of its field (mean over steps
    and seeds) against its importance toward its field's tasks, and the target share by step; the settings drawn."""
    import matplotlib.pyplot as plt

    descriptors = pd.read_csv(DESCRIPTORS_CSV)
    drawn = [(key, name, space) for key, (name, space) in ZERO_RUN_SETTINGS.items()
             if not steps[(steps["setting"] == name) & steps["agent"].isin(TRANSFER_AGENTS)].empty
             and space in set(descriptors["space"])]
    if not drawn:
        return []
    figure, axes = plt.subplots(2, len(drawn), figsize=(4.6 * len(drawn), 7), squeeze=False)
    for column, (key, name, space) in enumerate(drawn):
        domains = get_domain_space(space)
        importance = field_importance(descriptors, space)
        target = np.array(domains.fields) == "target"
        for color, agent in enumerate(ZERO_RUN_AGENTS):
            rows = steps[(steps["setting"] == name) & (steps["agent"] == agent)]
            if rows.empty:
                continue
            weights = rows[[f"weight/{domain}" for domain in domains.names]].to_numpy()
            mean = weights.mean(axis=0)
            within = np.where(target, mean / mean[target].sum(), mean / mean[~target].sum())
            for members, marker in ((~target, "o"), (target, "^")):
                axes[0][column].scatter(importance[members], within[members], marker=marker, alpha=0.7,
                                        color=f"C{color}", label=agent if marker == "o" else None)
            by_step = rows.assign(target_share=weights[:, target].sum(axis=1)).groupby("step")["target_share"].mean()
            axes[1][column].plot(by_step.index, by_step.to_numpy(), marker="o", color=f"C{color}", label=agent)
        axes[0][column].set_yscale("log")
        axes[0][column].set_title(f"({key}) {name}")
        axes[0][column].set_xlabel("importance toward its field's tasks\n(standardised; o source, ^ target domains)")
        axes[0][column].set_ylabel("share of its field's tokens")
        axes[1][column].set_xlabel("step")
        axes[1][column].set_ylabel("target share")
    axes[0][-1].legend(fontsize=7)
    axes[1][-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(CHOICES_FIGURE, dpi=120)
    plt.close(figure)
    return [key for key, *_ in drawn]


def report() -> None:
    """Print the table of the training spaces from their per-episode CSVs."""
    rows = []
    for space, folder in [("math-v1", REFERENCE_TRAJECTORIES),
                          *((space, transfer_trajectories(space)) for space in TRANSFER_TRAINING_SPACES)]:
        domains = get_domain_space(space)
        path = collection_csv(folder)
        table = pd.read_csv(path) if path.exists() else pd.DataFrame({"balanced": []})
        rules_path = collection_csv(rule_episodes(space))
        rules = pd.read_csv(rules_path) if rules_path.exists() else pd.DataFrame({"balanced": []})
        rows.append({"space": space, "source domains": len(domains.source_names),
                     "target domains": len(domains.target_names), "episodes": len(table),
                     "median final balanced": table["balanced"].median(), "best": table["balanced"].max(),
                     "rows": f"[{path.name}]({path.name})" if path.exists() else "not collected yet",
                     "rule episodes": len(rules), "their median": rules["balanced"].median(),
                     "their best": rules["balanced"].max(),
                     "their rows": f"[{rules_path.name}]({rules_path.name})" if rules_path.exists() else "-"})
    print("The transfer agent's training spaces (math-v1's reference trajectories and the further spaces; the rule "
          "episodes of `collect --rules` beside them):\n")
    spaces = pd.DataFrame(rows)
    if not spaces["rule episodes"].any():
        spaces = spaces.drop(columns=["rule episodes", "their median", "their best", "their rows"])
    print(spaces.to_markdown(index=False, floatfmt="+.4f"))
    if not LOSO_CSV.exists():
        return
    table = pd.read_csv(LOSO_CSV)
    print(f"\nLeave one space out ([{LOSO_CSV.name}]({LOSO_CSV.name})): the descriptor model fit on the other spaces "
          f"ranks the held-out space's episodes; `picked` is the mean final balanced score of the {PICKED} it ranks "
          "first.\n")
    print(table.to_markdown(index=False, floatfmt=".4f"))
    spaces = ~table["held_out_space"].str.endswith(" rules")
    means = table[spaces].groupby("variant")["spearman"].mean()
    print("\nMean Spearman over held-out spaces (`+ rules`: the other spaces' rule episodes in the fit too): " +
          "; ".join(f"{variant}: {value:+.2f}" for variant, value in means.items()) + ".")
    if not spaces.all():
        rules = table[~spaces].groupby("variant")["spearman"].mean()
        print("On the rule episodes (every space's plan episodes in the fit, none of the rules): " + "; ".join(
            f"{variant}: {value:+.2f}" for variant, value in rules.items()) + ".")
    goals = goal_table()
    if not goals.empty:
        print(f"\nThe headline's goal ([{HEADLINE_CSV.name}]({HEADLINE_CSV.name}), seeds 1-5; "
              "`experiments/headline_v1`): in (b), (d) and (f) the transfer agents play with no run of the setting; in "
              "(a) and (c) on the domains of their training trajectories.\n")
        print(goals.to_markdown(index=False))
    if COST_CSV.exists():
        table = cost_table()
        print(f"\nThe cost axis ([{COST_CSV.name}]({COST_CSV.name}); at 64 runs the headline's rows; at 0 the zero-run "
              "agents'): final balanced score against the real runs spent on the setting.\n")
        print(table.assign(balanced=[f"{mean:+.4f} ± {half:.4f}" for mean, half in zip(table["mean"], table["half"])])
              .drop(columns=["mean", "half"]).to_markdown(index=False))
        plot_cost(table)
        print(f"\n![the cost axis](../{COST_FIGURE.name})")
    if HEADLINE_STEPS_CSV.exists() and plot_choices(pd.read_csv(HEADLINE_STEPS_CSV)):
        print("\nWhat the zero-run agents choose, per domain against its importance toward its field's tasks (top; "
              f"[{DESCRIPTORS_CSV.name}]({DESCRIPTORS_CSV.name})), and their target share per step (bottom):\n")
        print(f"![what the agents choose](../{CHOICES_FIGURE.name})")
    if not PROBE_CSV.exists():
        return
    probes = pd.read_csv(PROBE_CSV)
    print(f"\nProbes on validation seeds ([{PROBE_CSV.name}]({PROBE_CSV.name})): final balanced score, mean and "
          "95% interval over the seeds played.\n")
    summary = [{"setting": setting, "agent": agent, "seeds": len(group),
                "training spaces": group["training_spaces"].max(),
                "training episodes": group["training_episodes"].max(),
                "balanced": "{:+.4f} ± {:.4f}".format(*mean_ci(group["balanced"])),
                "target share": group["target_share"].mean()}
               for (setting, agent), group in probes.groupby(["setting", "agent"], sort=True)]
    print(pd.DataFrame(summary).to_markdown(index=False, floatfmt=".2f"))
    effects = rules_effect(probes)
    if not effects.empty:
        print("\nWhat the rule episodes change, paired by seed (the seeds where the learner, its `-rules` twin and "
              "DSIR all played): mean difference in final balanced score.\n")
        print(effects.to_markdown(index=False, floatfmt="+.4f"))


def rules_effect(probes: pd.DataFrame) -> pd.DataFrame:
    """Per setting and learner with a ``-rules`` twin in the probes: the mean, over the seeds all three played, of the
    twin's final balanced score less the learner's, and of each less DSIR's."""
    scores = probes.pivot_table(index=["setting", "seed"], columns="agent", values="balanced")
    rows = []
    for learner in LEARNERS:
        twin = learner + RULES_SUFFIX
        if twin not in scores or learner not in scores or "dsir" not in scores:
            continue
        for setting, paired in scores[[learner, twin, "dsir"]].dropna().groupby(level="setting"):
            rows.append({"setting": setting, "learner": learner, "seeds": len(paired),
                         "with rules - without": (paired[twin] - paired[learner]).mean(),
                         "without - dsir": (paired[learner] - paired["dsir"]).mean(),
                         "with rules - dsir": (paired[twin] - paired["dsir"]).mean()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("collect", "validate", "probe", "cost", "report"))
    parser.add_argument("--setting", choices=tuple(SETTINGS), default="b",
                        help="probe, cost: the setting (default: b; cost: b or d)")
    parser.add_argument("--agents", nargs="+", choices=PROBE_AGENTS, default=list(PROBE_AGENTS),
                        help="probe: the agents (default: all four)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="probe: env seeds (default: 6 7 8, validation seeds); cost: (default: 1 .. 5, the "
                             "headline's)")
    parser.add_argument("--spaces", nargs="+", default=None, choices=RULE_SPACES,
                        help="collect: the training spaces (default: the three further ones; with --rules all four)")
    parser.add_argument("--rules", action="store_true",
                        help="collect: the rule episodes instead of the reference plan's")
    parser.add_argument("--with-rules", action="store_true",
                        help="probe: train the learners on the rule episodes too")
    parser.add_argument("--episodes", type=int, default=None,
                        help="collect: episodes a space (default: 64; with --rules 16)")
    parser.add_argument("--workers", type=int, default=2,
                        help="collect, probe: worker processes, episodes at once (default: %(default)s)")
    args = parser.parse_args()
    if args.step == "collect":
        spaces = args.spaces or list(RULE_SPACES if args.rules else TRANSFER_TRAINING_SPACES)
        if not args.rules and "math-v1" in spaces:
            parser.error("math-v1's trajectories are the package's reference ones; collect --rules adds to it.")
        collect(spaces, args.episodes or (16 if args.rules else 64), args.workers, args.rules)
        return
    if args.step == "validate":
        validate()
        return
    if args.step == "probe":
        probe(args.setting, args.agents, args.seeds or [6, 7, 8], args.with_rules, args.workers)
        return
    if args.step == "cost":
        if args.setting not in COST_SETTINGS:
            parser.error(f"cost plays settings {sorted(COST_SETTINGS)}, the ones with runs of their own.")
        cost(args.setting, args.seeds or list(HEADLINE_SEEDS))
        return
    command = shlex.join(["python", "experiments/transfer_v1/study.py", *sys.argv[1:]])
    publish_report(report, PAGE, PAGE_TITLE, __doc__, __file__, command)


if __name__ == "__main__":
    main()
