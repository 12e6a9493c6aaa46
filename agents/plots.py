"""The comparison's pictures (matplotlib, Agg canvas, PNG): mixtures, scores over steps, the final frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

Records = dict[tuple[str, int], dict[str, Any]]


def _by_agent(records: Records) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for (agent, _), record in records.items():
        grouped.setdefault(agent, []).append(record)
    return grouped


def _grid(count: int, width: float = 3.6, height: float = 2.8) -> tuple[Figure, list]:
    columns = min(count, 4)
    rows = -(-count // columns)
    figure = Figure(figsize=(width * columns, height * rows + 0.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False, sharex=True)).ravel()
    for axis in axes[count:]:
        axis.set_visible(False)
    return figure, list(axes[:count])


def _domain_colors(fields: list[str]) -> list:
    """Source-field domains in shades of blue, target-field ones in shades of orange."""
    colors, counts = [], {f: fields.count(f) for f in set(fields)}
    seen = {"source": 0, "target": 0}
    for field in fields:
        seen[field] += 1
        shade = 0.35 + 0.55 * seen[field] / (counts[field] + 1)
        colors.append(colormaps["Blues" if field == "source" else "Oranges"](shade))
    return colors


def plot_mixtures(records: Records, path: Path) -> None:
    """Stacked areas of the mixture (mean over seeds) at every step, one subplot per agent."""
    grouped = _by_agent(records)
    figure, axes = _grid(len(grouped))
    first = next(iter(records.values()))
    colors = _domain_colors(first["domain_fields"])
    for axis, (agent, episodes) in zip(axes, grouped.items()):
        mixtures = np.mean([[step["mixture"] for step in e["steps"]] for e in episodes], axis=0)
        # Step t trains on its mixture from t - 1 to t: repeat the last row so the last step has a width.
        edges = np.arange(len(mixtures) + 1)
        axis.stackplot(edges, np.vstack([mixtures, mixtures[-1]]).T, colors=colors, labels=first["domain_names"],
                       step="post")
        axis.set(title=agent, ylim=(0, 1), xlim=(0, edges[-1]), xlabel="tokens spent (steps)", ylabel="weight")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7)
    figure.suptitle("mixture per step (blue: source field, orange: target field)")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path)


def plot_scores(records: Records, path: Path) -> None:
    """Source and target field aggregates over the episode (mean over seeds), one subplot per agent."""
    grouped = _by_agent(records)
    figure, axes = _grid(len(grouped))
    for axis, (agent, episodes) in zip(axes, grouped.items()):
        for key, color in (("source", "tab:blue"), ("target", "tab:orange")):
            values = np.mean([[0.0] + [step[key] for step in e["steps"]] for e in episodes], axis=0)
            axis.plot(np.arange(len(values)), values, marker="o", color=color, label=key)
        axis.axhline(0.0, color="grey", lw=0.5)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set(title=agent, xlabel="step", ylabel="improvement over base")
    axes[0].legend(fontsize=7)
    figure.suptitle("source and target field scores (improvement over the base model, mean over seeds)")
    figure.tight_layout()
    figure.savefig(path)


def plot_frontier(summary: pd.DataFrame, path: Path) -> None:
    """Final source vs target score per agent, with 95% confidence intervals."""
    figure = Figure(figsize=(6.5, 5), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    for row in summary.to_dict("records"):
        # A legend rather than labels beside the points: good agents cluster and their labels would overlap.
        axis.errorbar(row["source_mean"], row["target_mean"], xerr=np.nan_to_num(row["source_ci95"]),
                      yerr=np.nan_to_num(row["target_ci95"]), fmt="o", capsize=3, label=row["agent"])
    axis.axhline(0.0, color="grey", lw=0.5)
    axis.axvline(0.0, color="grey", lw=0.5)
    axis.xaxis.set_major_locator(MaxNLocator(5))
    axis.legend(fontsize=7)
    axis.set(xlabel="source: improvement over base (forgetting < 0)", ylabel="target: improvement over base",
             title="final scores (mean, 95% CI)")
    figure.tight_layout()
    figure.savefig(path)
