"""The comparison's pictures (matplotlib, Agg canvas, PNG): mixtures, scores over steps, the final frontier.

- ``mixtures.png``: the mixture (mean over seeds) at every step as stacked weights, one panel per agent,
  source-field domains in blues below the target-field ones in oranges, one legend grouped by field;
- ``scores.png``: the source and target field scores and their mean (the balanced score) over the steps,
  one panel per score with a line per agent (mean over seeds) and a band for the seed spread (min to max);
- ``frontier.png``: final source vs final target score per agent, with 95% confidence intervals, labels
  placed clear of each other, iso-lines of the balanced score and, where agents crowd, a zoomed inset;
- a performance profile (:func:`plot_performance_profiles`): per algorithm, the share of its runs above
  each score, the way RL papers report many runs (``agents.rl_statistics``).

An agent keeps its colour and marker across ``scores.png`` and ``frontier.png`` (both take the agents in
the comparison's order).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from agents.rl_statistics import performance_profile

Records = dict[tuple[str, int], dict[str, Any]]
#: A box in display pixels: (x0, y0, x1, y1).
Box = tuple[float, float, float, float]

DPI = 150
MARKERS = "osD^vP*XhpH<>d"
BASE_STYLE = {"color": "0.45", "lw": 0.8, "zorder": 1}
ISO_STYLE = {"color": "0.6", "lw": 0.7, "ls": (0, (4, 3)), "zorder": 0}
#: Points crowd when this many or more lie within CROWD_SPAN of the axes' extent of each other.
CROWD_MIN_POINTS = 3
CROWD_SPAN = 0.07
#: The inset's side, as a fraction of the main axes, and the room its tick labels take beside it.
INSET_SIZE = 0.40
INSET_TICK_ROOM = 0.09
#: Half a marker's side, in display pixels: what a label must keep clear of around a point.
MARKER = 4.0 * DPI / 72


def _canvas(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas: no pyplot, so no global state and no display needed."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _by_agent(records: Records) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for (agent, _), record in records.items():
        grouped.setdefault(agent, []).append(record)
    return grouped


def _agent_styles(agents: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A colour and a marker per agent, by position, so that two plots of one comparison agree.

    The palettes' greys are left out: grey draws the base model and the iso-lines.
    """
    tab10, tab20 = colormaps["tab10"].colors, colormaps["tab20"].colors
    palette = [c for i, c in enumerate(tab10) if i != 7] if len(agents) <= 9 else \
        [c for i, c in enumerate(tab20) if i not in (14, 15)]
    return {agent: {"color": palette[i % len(palette)], "marker": MARKERS[i % len(MARKERS)]}
            for i, agent in enumerate(agents)}


def _domain_colors(fields: Sequence[str]) -> list:
    """Source-field domains in shades of blue, target-field ones in shades of orange."""
    colors, counts = [], {f: list(fields).count(f) for f in set(fields)}
    seen = {"source": 0, "target": 0}
    for field in fields:
        seen[field] += 1
        shade = 0.3 + 0.6 * seen[field] / (counts[field] + 1)
        colors.append(colormaps["Blues" if field == "source" else "Oranges"](shade))
    return colors


def _grid_shape(count: int) -> tuple[int, int]:
    """Rows and columns for ``count`` panels: one row up to five, else 4, 3 or 5 columns, fewest empty slots."""
    if count <= 5:
        return 1, count
    columns = min((4, 3, 5), key=lambda c: -count % c)  # min keeps the first of ties: 4 columns
    return -(-count // columns), columns


# ---------------------------------------------------------------------------------------------
# Mixtures


def plot_mixtures(records: Records, path: Path) -> None:
    """Stacked areas of the mixture (mean over seeds) at every step, one panel per agent."""
    grouped = _by_agent(records)
    first = next(iter(records.values()))
    names, fields = first["domain_names"], first["domain_fields"]
    # Source domains stacked below target ones, so the boundary between the blues and the oranges is the
    # target share, and the legend (target group above the source group) reads in the stack's order.
    order = [i for i, f in enumerate(fields) if f == "source"] + [i for i, f in enumerate(fields) if f != "source"]
    colors = _domain_colors([fields[i] for i in order])
    source_count = sum(f == "source" for f in fields)

    rows, columns = _grid_shape(len(grouped))
    # Tall enough for the panels and for the legend: a line per domain, plus the two titles and the gap.
    figure = _canvas(2.9 * columns + 2.2, max(2.3 * rows + 0.7, 0.2 * (len(names) + 3) + 1.0))
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).ravel()
    for axis in axes[len(grouped):]:
        axis.set_visible(False)
    for index, (axis, (agent, episodes)) in enumerate(zip(axes, grouped.items())):
        mixtures = np.mean([[step["mixture"] for step in e["steps"]] for e in episodes], axis=0)[:, order]
        # Step t trains on its mixture from t - 1 to t: repeat the last row so the last step has a width.
        edges = np.arange(len(mixtures) + 1)
        stacked = np.vstack([mixtures, mixtures[-1]])
        axis.stackplot(edges, stacked.T, colors=colors, step="post", edgecolor="white", linewidth=0.3)
        if 0 < source_count < len(order):
            axis.step(edges, stacked[:, :source_count].sum(axis=1), where="post", color="black", lw=1.0)
        axis.set(title=agent, ylim=(0, 1), xlim=(0, edges[-1]))
        axis.title.set_fontsize(10)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        # sharex hides the tick labels of every row but the last: keep them on a panel with none below it.
        if index + columns >= len(grouped):
            axis.xaxis.set_tick_params(labelbottom=True)
            axis.set_xlabel("steps trained")
        if index % columns == 0:
            axis.set_ylabel("domain weight")

    legends = []
    for field, title in (("target", "target field"), ("source", "source field")):
        members = [position for position, i in enumerate(order) if (fields[i] == "source") == (field == "source")]
        if members:
            handles = [Patch(facecolor=colors[p], edgecolor="white", label=names[order[p]]) for p in members[::-1]]
            legends.append((handles, title))
    figure.suptitle("Mixture per step (mean over seeds); above the black line: the target field's share", fontsize=11)
    figure.tight_layout(rect=(0, 0, 1 - 2.0 / figure.get_figwidth(), 1))
    top = 0.88
    for handles, title in legends:
        legend = figure.legend(handles=handles, title=title, loc="upper left", bbox_to_anchor=(1 - 1.95 /
                               figure.get_figwidth(), top), fontsize=8.5, title_fontsize=9, frameon=False,
                               alignment="left")
        figure.draw_without_rendering()  # to measure the first legend before stacking the second under it
        box = legend.get_window_extent().transformed(figure.transFigure.inverted())
        top = box.y0 - 0.02
    figure.savefig(path, dpi=DPI)


# ---------------------------------------------------------------------------------------------
# Scores over steps


def plot_scores(records: Records, path: Path) -> None:
    """Source, target and balanced scores over the steps: one panel per score, a line per agent.

    Lines are the mean over seeds, bands the seed spread (min to max); every panel compares all agents
    on one scale. Step 0 is the base model (every score 0: they are improvements over it).
    """
    grouped = _by_agent(records)
    styles = _agent_styles(list(grouped))
    panels = (("source", "source field score"), ("target", "target field score"),
              ("balanced", "balanced score (source + target) / 2"))
    figure = _canvas(13.5, 4.2)
    axes = figure.subplots(1, len(panels), sharex=True)
    for axis, (key, title) in zip(axes, panels):
        for agent, episodes in grouped.items():
            # Step 0: the base model, every score 0.
            values = {k: np.array([[0.0] + [step[k] for step in e["steps"]] for e in episodes])
                      for k in ("source", "target")}
            values["balanced"] = (values["source"] + values["target"]) / 2
            steps = np.arange(values[key].shape[1])
            style = styles[agent]
            axis.plot(steps, values[key].mean(axis=0), marker=style["marker"], color=style["color"], ms=4.5,
                      lw=1.4, label=agent, zorder=3)
            if len(episodes) > 1:
                axis.fill_between(steps, values[key].min(axis=0), values[key].max(axis=0), color=style["color"],
                                  alpha=0.12, lw=0, zorder=2)
        axis.axhline(0.0, **BASE_STYLE)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.25, lw=0.5)
        axis.set(title=title, xlabel="steps trained")
        axis.title.set_fontsize(10)
    axes[0].set_ylabel("improvement over the base model\n(higher is better)")
    seeds = {len(episodes) for episodes in grouped.values()}
    spread = "one seed" if seeds == {1} else "lines: mean over seeds, bands: min to max over seeds"
    figure.suptitle(f"Scores over the episode ({spread}; grey line: the base model)", fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.tight_layout(rect=(0, 0, 1 - 1.9 / figure.get_figwidth(), 1))
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1 - 1.85 / figure.get_figwidth(), 0.5),
                  fontsize=9, frameon=False, title="agent", title_fontsize=9, alignment="left")
    figure.savefig(path, dpi=DPI)


# ---------------------------------------------------------------------------------------------
# Frontier: label placement


def _overlap(a: Box, b: Box) -> float:
    """The area two boxes share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _outside(box: Box, frame: Box) -> float:
    """The area of ``box`` that lies outside ``frame``."""
    return (box[2] - box[0]) * (box[3] - box[1]) - _overlap(box, frame)


def _to_display(axis: Axes, box: tuple[float, float, float, float]) -> Box:
    """A box given in data coordinates, in display pixels."""
    (x0, y0), (x1, y1) = axis.transData.transform([(box[0], box[1]), (box[2], box[3])])
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _place_labels(axis: Axes, points: np.ndarray, errors: np.ndarray, names: Sequence[str],
                  colors: Sequence[Any], fontsize: float, avoid: Sequence[Box] = ()) -> None:
    """Label each point beside it, greedily choosing among spots around it the one that overlaps least.

    The candidates are the eight compass directions at growing distances; a spot costs its overlap with
    the labels already placed, the markers, the error bars, the ``avoid`` boxes and the outside of the
    axes, plus its distance (so that, all clear, the nearest spot wins). The most crowded points choose
    first. Deterministic: the same data gives the same picture. Far labels get a leader line.
    """
    renderer = axis.figure.canvas.get_renderer()
    frame = tuple(axis.get_window_extent(renderer).extents)
    pixel = axis.transData.transform(points)
    markers = [(x - MARKER, y - MARKER, x + MARKER, y + MARKER) for x, y in pixel]
    bars = []
    for (x, y), (dx, dy) in zip(points, errors):
        if dx > 0:
            bars.append(_to_display(axis, (x - dx, y, x + dx, y)))
        if dy > 0:
            bars.append(_to_display(axis, (x, y - dy, x, y + dy)))
    bars = [(x0 - 1, y0 - 1, x1 + 1, y1 + 1) for x0, y0, x1, y1 in bars]
    font = FontProperties(size=fontsize)
    pad = 0.25 * fontsize * DPI / 72
    directions = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
    radii = [MARKER + 2, MARKER + 12, MARKER + 26, MARKER + 45, MARKER + 70]
    distances = np.linalg.norm(pixel[:, None] - pixel[None], axis=-1)
    crowding = (distances < 80).sum(axis=1)
    placed: list[Box] = []
    for i in sorted(range(len(names)), key=lambda i: (-crowding[i], i)):
        width, height, _ = renderer.get_text_width_height_descent(names[i], font, ismath=False)
        half_w, half_h = width / 2 + pad, height / 2 + pad
        best = None
        for rank, radius in enumerate(radii):
            for ux, uy in directions:
                # Diagonal spots sit on the circle, straight ones just clear the point by ``radius``.
                cx = pixel[i, 0] + ux * (radius / (1.4 if uy else 1) + half_w)
                cy = pixel[i, 1] + uy * (radius / (1.4 if ux else 1) + half_h)
                box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
                cost = (20 * sum(_overlap(box, other) for other in placed)
                        + 10 * sum(_overlap(box, other) for other in markers)
                        + 10 * sum(_overlap(box, other) for other in avoid)
                        + 1 * sum(_overlap(box, other) for other in bars)
                        + 50 * _outside(box, frame) + 3 * radius)
                if best is None or cost < best[0]:
                    best = (cost, box, rank, cx - pixel[i, 0], cy - pixel[i, 1])
        _, box, rank, dx, dy = best
        placed.append(box)
        leader = {"arrowstyle": "-", "color": colors[i], "lw": 0.7, "shrinkA": 0, "shrinkB": 4} if rank >= 2 else None
        axis.annotate(names[i], points[i], xytext=(dx * 72 / DPI, dy * 72 / DPI), textcoords="offset points",
                      ha="center", va="center", fontsize=fontsize, color=colors[i], zorder=6, arrowprops=leader,
                      bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})


def _balanced_isolines(axis: Axes, points: np.ndarray, fontsize: float, count: int) -> list[Box]:
    """About ``count`` dashed lines of equal balanced score (source + target) / 2, labelled clear of ``points``.

    Returns the labels' boxes (display pixels), for the point labels to keep clear of.
    """
    (x0, x1), (y0, y1) = axis.get_xlim(), axis.get_ylim()
    levels = MaxNLocator(count).tick_values((x0 + y0) / 2, (x1 + y1) / 2)
    renderer = axis.figure.canvas.get_renderer()
    frame = tuple(axis.get_window_extent(renderer).extents)
    reach = MARKER + 2
    markers = [(x - reach, y - reach, x + reach, y + reach) for x, y in axis.transData.transform(points)]
    boxes = []
    for level in levels:
        # target = 2 * level - source: clip the line to the axes.
        xs = np.clip(np.array([x0, x1]), 2 * level - y1, 2 * level - y0)
        if xs[1] - xs[0] <= 1e-12 * (x1 - x0):
            continue
        axis.plot(xs, 2 * level - xs, **ISO_STYLE)
        (px0, py0), (px1, py1) = axis.transData.transform(np.column_stack([xs, 2 * level - xs]))
        angle = np.degrees(np.arctan2(py1 - py0, px1 - px0))
        # The label ends near the lower-right end, where the good (high-target) agents seldom are; failing
        # that, further up the line. None where every spot covers a point or leaves the axes.
        for along in (0.92, 0.75, 0.58, 0.41, 0.24):
            x = xs[0] + along * (xs[1] - xs[0])
            text = axis.text(x, 2 * level - x, f"balanced {level:g}", fontsize=fontsize, color="0.45", rotation=angle,
                             rotation_mode="anchor", ha="right", va="bottom", zorder=1)
            box = tuple(text.get_window_extent(renderer).extents)
            if _outside(box, frame) == 0 and not any(_overlap(box, marker) for marker in markers):
                boxes.append(box)
                break
            text.remove()
    return boxes


# ---------------------------------------------------------------------------------------------
# Frontier: limits, crowding, the inset


def _limits(values: np.ndarray, errors: np.ndarray, margin: float = 0.08) -> tuple[float, float]:
    """Limits that hold every value and its interval, with a margin.

    An interval widens the limits by at most half the values' span on either side, so that one very
    uncertain agent does not squash all the others into a corner: its bar runs off the frame instead.
    """
    lo, hi = float(values.min()), float(values.max())
    spread = hi - lo if hi > lo else 2 * float(errors.max())  # one distinct value: its whole interval
    lo = max(float((values - errors).min()), lo - spread / 2)
    hi = min(float((values + errors).max()), hi + spread / 2)
    width = hi - lo if hi > lo else max(abs(hi), 1e-3)  # a lone point without interval still needs a frame
    return lo - margin * width, hi + margin * width


def _crowded(fractions: np.ndarray) -> list[int]:
    """The largest group of points chained within CROWD_SPAN of each other (in axes fractions), if crowded."""
    count = len(fractions)
    near = np.abs(fractions[:, None] - fractions[None]).max(axis=-1) < CROWD_SPAN
    group_of = list(range(count))
    for i in range(count):  # single linkage: merge groups along every near pair
        for j in range(i + 1, count):
            if near[i, j] and group_of[i] != group_of[j]:
                old = group_of[j]
                group_of = [group_of[i] if g == old else g for g in group_of]
    groups = [[i for i in range(count) if group_of[i] == g] for g in dict.fromkeys(group_of)]
    largest = max(groups, key=len)
    return largest if len(largest) >= CROWD_MIN_POINTS else []


def _inset_frame(right: bool, top: bool) -> tuple[tuple[float, float, float, float], Box]:
    """The inset's bounds (x, y, width, height) in a corner, and the box (axes fractions) it takes.

    The box adds the room of the inset's tick labels, which face the middle of the axes, so that they
    never cover the main axes' own tick labels.
    """
    side, room, gap = INSET_SIZE, INSET_TICK_ROOM, 0.02
    x = 1 - gap - side if right else gap
    y = 1 - gap - side if top else gap
    return (x, y, side, side), (x - room * right, y - room * top, x + side + room * (not right),
                                y + side + room * (not top))


def _free_corner(fractions: np.ndarray, errors: np.ndarray, zoom: Box) -> tuple[bool, bool] | None:
    """A corner (right?, top?) whose inset frame holds no point, error bar or the zoomed region, if any."""
    items = [zoom] + [(fx - ex, fy - ey, fx + ex, fy + ey) for (fx, fy), (ex, ey) in zip(fractions, errors)]
    items += [(fx - 0.02, fy - 0.02, fx + 0.02, fy + 0.02) for fx, fy in fractions]
    for corner in ((True, True), (False, False), (True, False), (False, True)):
        _, box = _inset_frame(*corner)
        # Touching counts: an error bar is a box of no width.
        if not any(a[0] <= box[2] and a[2] >= box[0] and a[1] <= box[3] and a[3] >= box[1] for a in items):
            return corner
    return None


def _zoom_inset(axis: Axes, corner: tuple[bool, bool] | None, zoom: Box, points: np.ndarray, errors: np.ndarray,
                names: Sequence[str], styles: dict[str, dict[str, Any]]) -> list[Box]:
    """Draw the zoomed inset (in ``corner``, or right of the axes when None), label the points in it.

    Returns what the main axes' labels must keep clear of (display pixels): the inset with its tick
    labels and the zoomed region.
    """
    if corner is None:
        bounds = (1.12, 0.1, 0.55, 0.8)
    else:
        bounds, frame = _inset_frame(*corner)
    inset = axis.inset_axes(bounds)
    _draw_agents(inset, points, errors, names, styles, size=6)
    inset.set(xlim=(zoom[0], zoom[2]), ylim=(zoom[1], zoom[3]))
    inset.xaxis.set_major_locator(MaxNLocator(4))
    inset.yaxis.set_major_locator(MaxNLocator(4))
    inset.tick_params(labelsize=7)
    avoid = [_to_display(axis, zoom)]
    if corner is None:
        inset.set_title("zoom on the crowded agents", fontsize=8, color="0.3")
    else:
        # Tick labels face the middle of the axes, into the room reserved for them.
        right, top = corner
        (inset.yaxis.tick_left if right else inset.yaxis.tick_right)()
        (inset.xaxis.tick_bottom if top else inset.xaxis.tick_top)()
        avoid.append((*axis.transAxes.transform(frame[:2]), *axis.transAxes.transform(frame[2:])))
    axis.indicate_inset_zoom(inset, edgecolor="0.35", lw=0.8)
    inside = [i for i, (x, y) in enumerate(points) if zoom[0] <= x <= zoom[2] and zoom[1] <= y <= zoom[3]]
    _place_labels(inset, points[inside], errors[inside], [names[i] for i in inside],
                  [styles[names[i]]["color"] for i in inside], fontsize=7.5,
                  avoid=_balanced_isolines(inset, points, fontsize=7, count=4))
    return avoid


def _draw_agents(axis: Axes, points: np.ndarray, errors: np.ndarray, names: Sequence[str],
                 styles: dict[str, dict[str, Any]], size: float) -> None:
    """Each agent's point with its error bars (none where the half-width is 0), and the base model's lines."""
    for (x, y), (dx, dy), name in zip(points, errors, names):
        style = styles[name]
        axis.errorbar(x, y, xerr=dx or None, yerr=dy or None, fmt=style["marker"], color=style["color"], ms=size,
                      mec="white", mew=0.6, elinewidth=1.0, capsize=2.5, zorder=4)
    axis.axhline(0.0, **BASE_STYLE)
    axis.axvline(0.0, **BASE_STYLE)


def _title(summary: pd.DataFrame) -> tuple[str, str]:
    """The frontier's title and the note on its points and intervals."""
    has_interval = summary["source_ci95"].notna() & summary["target_ci95"].notna()
    counts = sorted(set(summary["episodes"]))
    seeds = f"{counts[0]} seeds" if len(counts) == 1 else f"{counts[0]}-{counts[-1]} seeds"
    if not has_interval.any():
        return "Final scores per agent (one seed: no intervals)", "Points: one episode per agent."
    note = f"Points: mean over {seeds}; bars: 95% confidence intervals (Student's t)."
    if not has_interval.all():
        note += " Agents with one seed have no intervals."
    return f"Final scores per agent (mean ± 95% CI, {seeds})", note


def plot_frontier(summary: pd.DataFrame, path: Path) -> None:
    """Final source vs target score per agent, with 95% CIs, labels, balanced iso-lines and a zoom on crowds."""
    names = list(summary["agent"])
    styles = _agent_styles(names)
    colors = [styles[name]["color"] for name in names]
    points = summary[["source_mean", "target_mean"]].to_numpy(dtype=float)
    # A NaN half-width (one episode) draws no bar.
    errors = np.nan_to_num(summary[["source_ci95", "target_ci95"]].to_numpy(dtype=float))
    xlim, ylim = _limits(points[:, 0], errors[:, 0]), _limits(points[:, 1], errors[:, 1])
    cut = ((points - errors < [xlim[0], ylim[0]]) | (points + errors > [xlim[1], ylim[1]])).any()
    spans = np.array([xlim[1] - xlim[0], ylim[1] - ylim[0]])
    fractions = (points - [xlim[0], ylim[0]]) / spans
    crowd = _crowded(fractions)
    zoom_box = corner = None
    if crowd:
        # Zoom so that the crowd fills the middle of the inset, with room around it for the labels.
        low, high = points[crowd].min(axis=0), points[crowd].max(axis=0)
        pad = np.maximum(0.6 * (high - low), 0.02 * spans)
        zoom_box = (*(low - pad), *(high + pad))
        zoom_fractions = ((zoom_box[0] - xlim[0]) / spans[0], (zoom_box[1] - ylim[0]) / spans[1],
                          (zoom_box[2] - xlim[0]) / spans[0], (zoom_box[3] - ylim[0]) / spans[1])
        corner = _free_corner(fractions, errors / spans, zoom_fractions)
    # No free corner: the inset goes to the right of the axes, on a wider canvas.
    beside = bool(crowd) and corner is None
    figure = _canvas(11.5 if beside else 7.5, 6.0)
    axis = figure.add_subplot()
    _draw_agents(axis, points, errors, names, styles, size=7)
    axis.set(xlim=xlim, ylim=ylim,
             xlabel="source field score: improvement over the base model\n(higher is better; below 0: forgetting)",
             ylabel="target field score: improvement over the base model\n(higher is better)")
    axis.xaxis.set_major_locator(MaxNLocator(6))
    axis.yaxis.set_major_locator(MaxNLocator(7))
    title, note = _title(summary)
    figure.suptitle(title, fontsize=12)
    if cut:
        note += " Bars that reach the frame run beyond it."
    figure.text(0.01, 0.01, note + "\nDashed lines: equal balanced score (source + target) / 2. "
                "Grey lines: the base model (no change).", fontsize=8, color="0.3", va="bottom", linespacing=1.4)
    figure.tight_layout(rect=(0, 0.06, 0.62 if beside else 1, 1))

    labelled = list(range(len(names)))
    avoid: list[Box] = []
    if crowd:
        avoid += _zoom_inset(axis, corner, zoom_box, points, errors, names, styles)
        # The crowd is labelled in the inset only: in the main axes its labels could not but overlap. Its
        # markers stay in the way of the other labels.
        avoid += [(x - MARKER, y - MARKER, x + MARKER, y + MARKER) for x, y in axis.transData.transform(points[crowd])]
        labelled = [i for i in labelled if i not in crowd]
    avoid += _balanced_isolines(axis, points, fontsize=7.5, count=6)
    _place_labels(axis, points[labelled], errors[labelled], [names[i] for i in labelled],
                  [colors[i] for i in labelled], fontsize=9, avoid=avoid)
    figure.savefig(path, dpi=DPI)


# ---------------------------------------------------------------------------------------------
# Performance profiles


def plot_performance_profiles(scores: dict[str, np.ndarray], path: Path, xlabel: str = "score",
                              points: int = 200) -> None:
    """Performance profiles: for each algorithm, the share of its run x task scores above a threshold, as the
    threshold sweeps the range of all scores (Agarwal et al., 2021); a curve above another everywhere
    dominates it stochastically.

    Args:
        scores: ``(runs, tasks)`` scores by algorithm.
        path: the PNG to write.
        xlabel: what the scores are (the x axis).
        points: thresholds drawn between the lowest and the highest score.
    """
    styles = _agent_styles(list(scores))
    every = np.concatenate([np.ravel(values) for values in scores.values()])
    span = float(every.max() - every.min()) or 1.0
    thresholds = np.linspace(every.min() - 0.05 * span, every.max() + 0.05 * span, points)
    figure = _canvas(6.4, 4.2)
    axis = figure.subplots()
    for name, values in scores.items():
        axis.plot(thresholds, performance_profile(values, thresholds), color=styles[name]["color"], lw=1.6,
                  label=f"{name} ({np.size(values)} runs)")
    axis.set(xlabel=xlabel, ylabel="share of runs scoring above", ylim=(-0.02, 1.02))
    axis.grid(alpha=0.25, lw=0.5)
    axis.legend(fontsize=8, frameon=False)
    axis.set_title("Performance profiles", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
