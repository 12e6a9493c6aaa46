"""The rliable-style statistics: IQM, stratified bootstrap intervals, probability of improvement, profiles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from agents.rl_statistics import (
    aggregate_table,
    interquartile_mean,
    performance_profile,
    probability_of_improvement,
    ranking_reliability,
    stratified_bootstrap_ci,
)


def test_the_interquartile_mean_drops_the_outer_quarters():
    assert interquartile_mean(np.arange(1, 9)) == pytest.approx(4.5)  # the mean of 3, 4, 5, 6
    assert interquartile_mean([0, 1, 1, 1000]) == pytest.approx(1.0)  # one wild run moves the mean, not the IQM


def test_the_bootstrap_resamples_runs_within_each_task_only():
    # Task 0 scores 0 and task 1 scores 10 on every run: a stratified resample always holds as many of each,
    # so the pooled mean is 5 in every resample; resampling across tasks would spread it from 0 to 10.
    scores = np.column_stack([np.zeros(6), np.full(6, 10.0)])
    low, high = stratified_bootstrap_ci(scores, statistic=lambda *columns, axis=-1:
                                        np.concatenate(columns, axis=axis).mean(axis=axis))
    assert low == pytest.approx(5.0) and high == pytest.approx(5.0)
    noisy = np.random.default_rng(0).normal(0.0, 1.0, (20, 3))
    low, high = stratified_bootstrap_ci(noisy)
    assert low < interquartile_mean(noisy) < high
    assert stratified_bootstrap_ci(noisy, seed=3) == stratified_bootstrap_ci(noisy, seed=3)
    wider = stratified_bootstrap_ci(noisy[:5])
    assert wider[1] - wider[0] > high - low  # fewer runs, a wider interval


def test_probability_of_improvement_is_the_mann_whitney_statistic_averaged_over_tasks():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.5, 1.0, (12, 2)), rng.normal(0.0, 1.0, (9, 2))
    expected = np.mean([mannwhitneyu(x[:, t], y[:, t]).statistic / (12 * 9) for t in range(2)])
    probability, low, high = probability_of_improvement(x, y)
    assert probability == pytest.approx(expected) and low < probability < high
    assert probability_of_improvement(x + 100, y)[:3] == (1.0, 1.0, 1.0)  # every run of x beats every run of y
    assert probability_of_improvement([[1.0], [1.0]], [[1.0], [1.0]])[0] == 0.5  # ties count one half


def test_profiles_tables_and_bad_input():
    scores = np.array([[0.1, 0.5], [0.9, 0.3]])
    np.testing.assert_allclose(performance_profile(scores, [0.0, 0.4, 1.0]), [1.0, 0.5, 0.0])
    rng = np.random.default_rng(2)
    table = aggregate_table({"strong": rng.normal(1.0, 0.1, (5, 2)), "weak": rng.normal(0.0, 0.1, (5, 2))})
    assert table.attrs["best"] == "strong"
    strong, weak = table.set_index("algorithm").loc[["strong", "weak"]].to_dict("records")
    assert strong["p_improve_over_best"] == 0.5 and weak["p_improve_over_best"] == 0.0
    assert strong["iqm_low"] <= strong["iqm"] <= strong["iqm_high"] and weak["iqm_high"] < strong["iqm_low"]
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="finite"):
        aggregate_table({"broken": [[np.nan, 1.0]]})


def test_the_performance_profile_plot_is_written(tmp_path):
    from PIL import Image

    from agents.plots import plot_performance_profiles

    rng = np.random.default_rng(4)
    path = tmp_path / "profiles.png"
    plot_performance_profiles({"a": rng.normal(1.0, 0.2, (5, 2)), "b": rng.normal(0.0, 0.2, (5, 2))}, path,
                              xlabel="normalised score")
    with Image.open(path) as image:
        assert image.size == (960, 630)


def test_ranking_reliability_is_one_for_separated_algorithms_and_near_zero_for_alike_ones():
    rng = np.random.default_rng(0)
    separated = {f"algo{i}": 10.0 * i + rng.normal(size=(5, 1)) for i in range(4)}
    assert np.all(ranking_reliability(separated, splits=200) == 1.0)
    # Alike algorithms: one sample's halves may agree by chance, but over samples the agreement is nil.
    medians = [np.median(ranking_reliability({f"algo{i}": rng.normal(size=(6, 1)) for i in range(6)}, splits=100))
               for _ in range(20)]
    assert abs(np.mean(medians)) < 0.2 and min(medians) < 0 < max(medians)
    with pytest.raises(ValueError, match="three algorithms"):
        ranking_reliability({"a": [[1.0], [2.0]], "b": [[2.0], [3.0]]})
