"""Aggregate scores over runs and tasks the way RL papers now report them (Agarwal et al., 2021, "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", the ``rliable`` library).

``rliable`` itself does not import under pandas 3 (its ``arch`` dependency), so its statistics are computed here
with numpy and ``scipy.stats``:

- the **interquartile mean** (IQM): the mean of the middle 50% of all run x task scores, robust to outlier runs
  and far less noisy than the median;
- **stratified bootstrap** confidence intervals: runs resampled with replacement within each task (a setting,
  a seed group), never across them, so every resample keeps the design's tasks;
- the **probability of improvement** ``P(X > Y)`` of one algorithm over another, averaged over tasks (ties
  count one half: the Mann-Whitney U statistic over ``n * m``);
- **performance profiles**: the share of run x task scores above each threshold.

Scores are ``(runs, tasks)`` arrays, one per algorithm: a row per run (a seed), a column per task (a setting).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

#: Bootstrap resamples of the intervals (rliable's default is 2,000 for its plots).
RESAMPLES = 2_000


def _as_scores(scores: np.ndarray | list) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"Scores must be a (runs, tasks) array with at least one of each, got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError("Scores must be finite; drop or re-run the runs with NaN or infinite scores.")
    return array


def interquartile_mean(scores: np.ndarray | list, axis: int | None = None) -> float | np.ndarray:
    """The mean of the middle 50% of ``scores`` (all entries, or along ``axis``): 25% trimmed at each end."""
    return stats.trim_mean(np.asarray(scores, dtype=np.float64), 0.25, axis=axis)


def _pooled_iqm(*task_columns: np.ndarray, axis: int = -1) -> np.ndarray:
    return interquartile_mean(np.concatenate(task_columns, axis=axis), axis=axis)


def _pooled_mean(*task_columns: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.concatenate(task_columns, axis=axis).mean(axis=axis)


def stratified_bootstrap_ci(scores: np.ndarray | list, statistic: Callable[..., np.ndarray] = _pooled_iqm,
                            confidence: float = 0.95, resamples: int = RESAMPLES,
                            seed: int = 0) -> tuple[float, float]:
    """The percentile ``confidence`` interval of ``statistic`` under a stratified bootstrap of ``scores``.

    Args:
        scores: ``(runs, tasks)``; the runs of each task are resampled on their own.
        statistic: a vectorised statistic of the task columns (``statistic(*columns, axis=-1)``); default the
            pooled IQM.
        confidence: the interval's coverage.
        resamples: bootstrap resamples.
        seed: seeds the resampling, so an interval is reproducible.
    """
    array = _as_scores(scores)
    if array.shape[0] == 1:
        value = float(statistic(*array.T[:, None, :], axis=-1)[0])
        return value, value  # one run per task: nothing to resample
    result = stats.bootstrap(tuple(array.T), statistic, n_resamples=resamples, confidence_level=confidence,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _improvement_probability(columns: tuple[np.ndarray, ...], tasks: int, axis: int = -1) -> np.ndarray:
    """``P(X > Y)`` averaged over tasks; ``columns`` holds the tasks of X, then those of Y."""
    per_task = []
    for x, y in zip(columns[:tasks], columns[tasks:]):
        x, y = np.moveaxis(x, axis, -1)[..., :, None], np.moveaxis(y, axis, -1)[..., None, :]
        per_task.append(((x > y) + 0.5 * (x == y)).mean(axis=(-2, -1)))
    return np.mean(per_task, axis=0)


def probability_of_improvement(x: np.ndarray | list, y: np.ndarray | list, confidence: float = 0.95,
                               resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """How likely a run of ``x`` beats a run of ``y`` on the same task, averaged over tasks, with the percentile
    interval of a bootstrap stratified by algorithm and task: ``(probability, low, high)``.

    Args:
        x: ``(runs, tasks)`` scores of one algorithm.
        y: ``(runs, tasks)`` scores of another on the same tasks (the run counts may differ).
        confidence: as :func:`stratified_bootstrap_ci`.
        resamples: as :func:`stratified_bootstrap_ci`.
        seed: as :func:`stratified_bootstrap_ci`.
    """
    x, y = _as_scores(x), _as_scores(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} tasks and y {y.shape[1]}; compare them on the same tasks.")
    tasks = x.shape[1]
    columns = (*x.T, *y.T)
    point = float(_improvement_probability(columns, tasks))
    if min(x.shape[0], y.shape[0]) == 1:
        return point, point, point

    def statistic(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        return _improvement_probability(resampled, tasks, axis)

    result = stats.bootstrap(columns, statistic, n_resamples=resamples, confidence_level=confidence,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


def performance_profile(scores: np.ndarray | list, thresholds: np.ndarray | list) -> np.ndarray:
    """The share of ``scores``' run x task entries strictly above each of ``thresholds``."""
    array = _as_scores(scores).ravel()
    return (array[None, :] > np.asarray(thresholds, dtype=np.float64)[:, None]).mean(axis=1)


def aggregate_table(scores: Mapping[str, np.ndarray | list], confidence: float = 0.95,
                    resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """One row per algorithm: its run and task counts, IQM and mean with stratified-bootstrap intervals, and
    the probability that it improves on the algorithm with the best IQM (0.5 for that one).

    Args:
        scores: ``(runs, tasks)`` scores by algorithm name, every algorithm on the same tasks.
        confidence: as :func:`stratified_bootstrap_ci`.
        resamples: as :func:`stratified_bootstrap_ci`.
        seed: as :func:`stratified_bootstrap_ci`.
    """
    arrays = {name: _as_scores(values) for name, values in scores.items()}
    if not arrays:
        raise ValueError("No algorithms to aggregate.")
    rows = []
    for name, array in arrays.items():
        iqm_low, iqm_high = stratified_bootstrap_ci(array, _pooled_iqm, confidence, resamples, seed)
        mean_low, mean_high = stratified_bootstrap_ci(array, _pooled_mean, confidence, resamples, seed)
        rows.append({"algorithm": name, "runs": array.shape[0], "tasks": array.shape[1],
                     "iqm": float(interquartile_mean(array)), "iqm_low": iqm_low, "iqm_high": iqm_high,
                     "mean": float(array.mean()), "mean_low": mean_low, "mean_high": mean_high})
    table = pd.DataFrame(rows)
    best = str(table.loc[table["iqm"].idxmax(), "algorithm"])
    improvements = [probability_of_improvement(arrays[name], arrays[best], confidence, resamples, seed)
                    for name in table["algorithm"]]
    table["p_improve_over_best"], table["p_low"], table["p_high"] = np.array(improvements).T
    table.attrs["best"] = best
    return table


def ranking_reliability(scores: Mapping[str, np.ndarray | list], splits: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """How well the algorithms' ranking reproduces under the noise of their runs: split-half reliability, ``(splits,)``.

    Each split deals every algorithm's runs (within each task) at random into two halves; the value is Spearman's
    correlation between the algorithms' IQMs on one half and on the other, two independent measurements of the
    ranking from half the runs each. Unlike two bootstrap replicates of the same runs, which share their chance
    differences, the halves share nothing. The Spearman-Brown formula ``2 r / (1 + r)`` takes the median to all the
    runs: the agreement two independent reruns of the design would reach, and so the ceiling on any predictor's
    agreement with the measured ranking (a surrogate's, for instance), which is at best about its square root.

    Args:
        scores: ``(runs, tasks)`` scores by algorithm name (at least three algorithms, two runs each).
        splits: random splits.
        seed: seeds the splits.
    """
    arrays = [_as_scores(values) for values in scores.values()]
    if len(arrays) < 3 or min(len(array) for array in arrays) < 2:
        raise ValueError(f"A split-half ranking needs three algorithms at least, each with two runs; got "
                         f"{[len(array) for array in arrays]} runs.")
    rng = np.random.default_rng(seed)
    correlations = np.empty(splits)
    for split in range(splits):
        halves = []
        for array in arrays:
            order = np.argsort(rng.random(array.shape), axis=0)  # a permutation of the runs per task
            shuffled, middle = np.take_along_axis(array, order, axis=0), len(array) // 2
            halves.append((interquartile_mean(shuffled[:middle]), interquartile_mean(shuffled[middle:])))
        first, second = np.array(halves).T
        correlations[split] = stats.spearmanr(first, second).statistic
    return correlations
