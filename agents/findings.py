"""What a comparison found, in words: the best agent, its lead over the next, and whether the lead is larger than
the 95% confidence intervals. ``mixing-gym evaluate`` and ``demo`` end with it."""

from __future__ import annotations

import math

import pandas as pd


def finding(summary: pd.DataFrame, metric: str = "balanced") -> str:
    """What a comparison found, in one or two lines: the best agent on ``metric``, its lead over the next, and
    whether that lead is larger than the 95% confidence intervals.

    Args:
        summary: :attr:`agents.harness.Comparison.summary`: one row per agent with ``agent``, ``episodes`` and
            ``<metric>_mean`` / ``<metric>_ci95`` (the interval's half-width, NaN for a single episode).
        metric: the metric to rank by (the balanced score, whatever the env's reward).
    """
    label = f"{metric} score"
    ranked = summary.sort_values(f"{metric}_mean", ascending=False, kind="stable").to_dict("records")
    best = ranked[0]
    if len(ranked) == 1:
        return f"Finding: one agent, {best['agent']}, with a {label} of {best[f'{metric}_mean']:+.4f}."
    runner = ranked[1]
    lead = best[f"{metric}_mean"] - runner[f"{metric}_mean"]
    first = (f"Finding: {best['agent']} has the best {label}, {best[f'{metric}_mean']:+.4f}, {lead:.4f} above "
             f"{runner['agent']} ({runner[f'{metric}_mean']:+.4f}).")
    best_ci, runner_ci = best[f"{metric}_ci95"], runner[f"{metric}_ci95"]
    if math.isnan(best_ci) or math.isnan(runner_ci):
        return (first + "\nWith one seed per agent there are no 95% confidence intervals to tell that lead from "
                        "noise; --seeds 5 plays five seeds per agent and gives them.")
    intervals = f"±{best_ci:.4f} and ±{runner_ci:.4f} over {best['episodes']} seeds"
    # Two intervals that do not overlap: the lead exceeds both half-widths together.
    if lead > best_ci + runner_ci:
        return first + f"\nThe lead is larger than the 95% confidence intervals ({intervals}): they do not overlap."
    return (first + f"\nThe lead is within the 95% confidence intervals ({intervals}): they overlap, so the two "
                    "are not told apart; more --seeds narrow the intervals.")
