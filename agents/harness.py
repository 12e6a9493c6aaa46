"""Compare agents on the same seeds: cached episodes, a table with confidence intervals, and plots.

``evaluate_agents`` plays one episode per (agent, seed), each from ``env.reset(seed=seed)``, and writes
to ``output_dir``:

- ``episodes/<agent>__seed<seed>.json``: every finished episode (per-step mixtures and scores), an
  :class:`~agents.runner.EpisodeStore` that the episode runner commits each episode to as it finishes; an
  interrupted comparison resumes from it and plays only what is missing. Episodes are keyed by agent name and
  seed (and checked against the env configuration): give an agent whose settings changed a new name;
- ``episodes.csv``: one row per episode; ``results.csv`` and ``results.md``: per agent, the mean and the
  95% confidence interval (Student's t) of the final source and target scores (the env's field
  aggregates: improvement over the base model), the balanced score (their mean, whatever the env's
  reward), the episode return and the mean target share;
- ``mixtures.png``, ``scores.png``, ``frontier.png`` (see :mod:`agents.plots`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from agents.backends import Backend
from agents.base import Agent, target_share
from agents.plots import plot_frontier, plot_mixtures, plot_scores
from agents.runner import JOB_KEY, EpisodeJob, EpisodeStore, run_episodes
from mixing_gym import DEFAULT_ENV_ID
from mixing_gym.env_config import episode_cache_key

#: Episode summaries compared in the table: (record key, column label).
METRICS = (
    ("source", "source"),
    ("target", "target"),
    ("balanced", "balanced"),
    ("return", "return"),
    ("target_share", "target share"),
)
#: Final values of an episode record copied to ``episodes.csv``.
EPISODE_KEYS = ("source", "target", "balanced", "return", "objective")


@dataclass
class Comparison:
    """What :func:`evaluate_agents` produced.

    Args:
        summary: one row per agent: episodes, and mean and 95% CI half-width of every metric.
        episodes: one row per (agent, seed) with its final metrics.
        records: the episode records (:meth:`~agents.base.PlayedEpisode.record`) by (agent, seed).
        new_episodes: episodes played by this call (the others came from the cache).
        output_dir: where the files were written.
    """

    summary: pd.DataFrame
    episodes: pd.DataFrame
    records: dict[tuple[str, int], dict[str, Any]]
    new_episodes: int
    output_dir: Path


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its ``confidence`` interval (Student's t); NaN width for one value."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return float(array.mean()), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, array.size - 1) * array.std(ddof=1) / np.sqrt(array.size)
    return float(array.mean()), float(half)


def _summaries(records: dict[tuple[str, int], dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for (agent, seed), record in records.items():
        rows.append({"agent": agent, "seed": seed, **{k: record[k] for k in EPISODE_KEYS},
                     "target_share": target_share(record)})
    episodes = pd.DataFrame(rows)
    summary = []
    for agent, group in episodes.groupby("agent", sort=False):
        row: dict[str, Any] = {"agent": agent, "episodes": len(group)}
        for key, _ in METRICS:
            row[f"{key}_mean"], row[f"{key}_ci95"] = mean_ci(group[key])
        summary.append(row)
    return pd.DataFrame(summary), episodes


def _markdown(summary: pd.DataFrame) -> str:
    def cell(key: str, mean: float, half: float) -> str:
        sign = "" if key == "target_share" else "+"  # shares are not changes
        return f"{mean:{sign}.4f}" + ("" if np.isnan(half) else f" ± {half:.4f}")

    lines = ["| agent | episodes | " + " | ".join(label for _, label in METRICS) + " |",
             "| --- | ---: |" + " ---: |" * len(METRICS)]
    for row in summary.to_dict("records"):
        cells = [cell(key, row[f"{key}_mean"], row[f"{key}_ci95"]) for key, _ in METRICS]
        lines.append(f"| {row['agent']} | {row['episodes']} | " + " | ".join(cells) + " |")
    single = summary.loc[summary["episodes"] < 2, "agent"].tolist()
    intervals = ("Mean ± 95% confidence interval (Student's t) over seeds." if not single else
                 "Mean ± 95% confidence interval (Student's t) over seeds; no interval for "
                 + ("any agent" if len(single) == len(summary) else ", ".join(single))
                 + ": one episode each (run more seeds, e.g. `--seeds 5`, for intervals).")
    return (intervals + " Source and target: final field aggregates (improvement over the base model); "
            "balanced: their mean; return: of the env's reward; target share: of the tokens, mean over steps.\n\n"
            + "\n".join(lines) + "\n")


def evaluate_agents(
    agents: Mapping[str, Agent],
    seeds: int | Sequence[int],
    env_kwargs: Mapping[str, Any],
    output_dir: str | Path,
    progress: bool = True,
    env_id: str = DEFAULT_ENV_ID,
    write_report: bool = True,
    backend: Backend | None = None,
) -> Comparison:
    """Play every agent on the same seeds (one episode each), cache the episodes, write the table and plots.

    Args:
        agents: the agents by name (names become file names: letters, digits, ``_.-``).
        seeds: the episode seeds, or a count ``N`` for seeds ``0 .. N-1``.
        env_kwargs: keyword arguments of ``gym.make(env_id, ...)``; one env serves every episode.
        output_dir: where the episodes, ``results.csv``, ``results.md`` and the plots go.
        progress: show a progress bar over the episodes.
        env_id: the env to play: ``"DataMixing-v1"`` (default) or ``"DataMixing-v0"``.
        write_report: write ``results.*``, ``episodes.csv`` and the plots (``False``: only the episodes, for
            processes that each play a part of one comparison into the same ``output_dir``; a last call with
            every agent and seed then finds them all cached and writes the report).
        backend: play the missing episodes as parallel tasks there, one each (each worker makes its own env;
            this process writes the episodes as they finish); default: one after another in one env here.
    """
    if not agents:
        raise ValueError("No agents to evaluate.")
    bad = [name for name in agents if not JOB_KEY.match(name)]
    if bad:
        raise ValueError(f"Agent names {bad} cannot name files; use letters, digits, '_', '.' and '-'.")
    output_dir = Path(output_dir)
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    pairs = [(name, seed) for name in agents for seed in seeds]  # agents, then seeds, in the order given
    jobs = [EpisodeJob(f"{name}__seed{seed}", agents[name], seed, metadata={"agent": name}) for name, seed in pairs]
    store = EpisodeStore(output_dir / "episodes")
    played = run_episodes(jobs, env_id, env_kwargs, store, backend=backend, progress=progress)
    records = dict(zip(pairs, store.episodes(jobs, episode_cache_key(env_id, env_kwargs))))
    summary, episodes = _summaries(records)
    if not write_report:
        return Comparison(summary, episodes, records, played, output_dir)
    summary.to_csv(output_dir / "results.csv", index=False)
    episodes.to_csv(output_dir / "episodes.csv", index=False)
    (output_dir / "results.md").write_text(_markdown(summary))
    plot_mixtures(records, output_dir / "mixtures.png")
    plot_scores(records, output_dir / "scores.png")
    plot_frontier(summary, output_dir / "frontier.png")
    return Comparison(summary, episodes, records, played, output_dir)
