"""Normalised scores on two scales, both 0 at the uniform mixture.

- The reference scale (D4RL's and Minari's): :func:`get_normalized_score`, ``100 * (score - uniform) / (best -
  uniform)`` with fixed reference points per env, preset and field.
- The baselines scale of one comparison: :func:`normalize_to_baselines`, 100 at the best baseline's mean in that
  comparison (the headline's per-setting scale).

On the reference scale 0 is the uniform mixture, 100 the best policy the search baseline found with 64 real episodes
(Optuna TPE over static mixtures, then RegMix fitted on its trials: the better of the two on fresh seeds), both
measured on the real env: for the math field by the v1 environment card, for the code field by the headline's setting
(d). A score is an episode's final balanced score (its return under the default reward). The reference values
are recorded here with the episodes they come from; ``tests/test_v1.py`` checks them against those CSV rows,
so they cannot drift from the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReferenceScores:
    """The two reference points of one env and proxy preset.

    Args:
        uniform: the uniform mixture's mean final balanced score (normalised score 0).
        best: the mean final balanced score of the best policy the search baseline found (normalised 100).
        source: where each value comes from: the CSV, its rows, and the command that wrote them.
    """

    uniform: float
    best: float
    source: str


#: Reference scores by ``(env id, preset, target field)``.
REFERENCE_SCORES: dict[tuple[str, str, str], ReferenceScores] = {
    ("DataMixing-v1", "small", "math"): ReferenceScores(
        uniform=0.062336960296543564,
        best=0.08363107667096721,
        source="docs/results/card_v1_small.csv: uniform = the mean balanced score of the 'uniform' rows of the "
               "fixed part (seeds 0-2); best = the mean of the \"regmix on the search's runs\" rows (seeds 1-3, "
               "RegMix fitted on the 64 search episodes of docs/results/search_v1_small.csv); written by "
               "`python experiments/environment_card_v1/study.py run --preset small`",
    ),
    # On code, the search's best is 0.0023 above uniform, less than uniform's seed std (0.0027), and fixed_ratio_25
    # scores above it: code-field normalised scores are coarse, and above 100 does not mean above every policy.
    ("DataMixing-v1", "small", "code"): ReferenceScores(
        uniform=0.0316552,
        best=0.0339272,
        source="docs/results/headline_v1_small.csv, setting d_code_field: uniform = the mean balanced score of the "
               "'uniform' rows (seeds 1-5); best = the mean of the 'search_64' rows (seeds 1-5: the best of the 64 "
               "trials of docs/results/search_v1_small_code.csv, above RegMix fitted on them); written by "
               "`python experiments/headline_v1/study.py run --setting d`",
    ),
}


def reference_scores(env_id: str, preset: str = "small", target_field: str = "math") -> ReferenceScores:
    """The reference scores of ``env_id`` on ``preset`` and ``target_field``; an error names the ones that exist."""
    key = (env_id.removeprefix("mixing_gym:"), preset, target_field)
    if key not in REFERENCE_SCORES:
        known = ", ".join(f"{env} on {name!r}, the {field!r} field" for env, name, field in REFERENCE_SCORES)
        raise KeyError(f"No reference scores for {key[0]} on preset {preset!r}, the {target_field!r} field; there "
                       f"are some for {known}. They come from real episodes (REFERENCE_SCORES says which).")
    return REFERENCE_SCORES[key]


def get_normalized_score(env_id: str, score: float | np.ndarray, preset: str = "small",
                         target_field: str = "math") -> float | np.ndarray:
    """``score`` (final balanced scores, a number or an array) on the reference scale: 0 = uniform, 100 = the
    search's best (:data:`REFERENCE_SCORES`).

    Args:
        env_id: the env the score was measured on (``"DataMixing-v1"``).
        score: final balanced score(s) of episodes on it.
        preset: the proxy preset of those episodes.
        target_field: the env's ``target_field`` in those episodes: reference points of one field do not
            score another's.
    """
    reference = reference_scores(env_id, preset, target_field)
    span = reference.best - reference.uniform
    normalized = 100.0 * (np.asarray(score, dtype=np.float64) - reference.uniform) / span
    return float(normalized) if normalized.ndim == 0 else normalized


def normalize_to_baselines(score: float | np.ndarray, uniform: float, best_baseline: float) -> float | np.ndarray:
    """``score`` on one comparison's baselines scale: 0 = uniform's mean, 100 = the best baseline's mean there.

    Args:
        score: final balanced score(s) of episodes of the comparison.
        uniform: the uniform mixture's mean score in it.
        best_baseline: the best baseline's mean score in it.

    Returns NaN where uniform is the best baseline (``best_baseline <= uniform``): the scale has no length.
    """
    scale = 100.0 / (best_baseline - uniform) if best_baseline > uniform else np.nan
    normalized = (np.asarray(score, dtype=np.float64) - uniform) * scale
    return float(normalized) if normalized.ndim == 0 else normalized
