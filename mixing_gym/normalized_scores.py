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

The reference surrogates (``DataMixingSurrogate-v1``) have reference points of their own: the same two policies,
the uniform mixture and the search's best schedule, replayed on the surrogate. The surrogate cannot take the real
env's: it is deterministic (the same actions give the same episode, whatever the seed) and it was fit on real
episodes whose scores it reproduces only up to its error, so it scores every policy a little differently: uniform
at +0.0700 on math where the real env has +0.0623 (36 on the real env's scale, not 0), +0.0300 on code where the real
env has +0.0317 (-74). On its own scale 0 is uniform on the surrogate and 100 the real env's best-known policy as the
surrogate sees it, so a policy's normalised scores on the surrogate and on the real env are on one footing: where
they differ, the surrogate errs on that policy.
``tests/test_normalized_scores.py`` replays both policies on the shipped surrogates and checks the values here.
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
    # The reference surrogates: the real env's two reference policies replayed on them (deterministic episodes).
    ("DataMixingSurrogate-v1", "small", "math"): ReferenceScores(
        uniform=0.07003463389960843,
        best=0.0915375636520057,
        source="the reference surrogate of the math field (mixing_gym/reference/surrogate-v1-small): uniform = the "
               "final balanced score of the uniform mixture on it; best = that of the \"regmix on the search's runs\" "
               "schedule of docs/results/card_v1_small.csv (the real env's best above) played on it",
    ),
    ("DataMixingSurrogate-v1", "small", "code"): ReferenceScores(
        uniform=0.029985121528341506,
        best=0.03241739689165991,
        source="the reference surrogate of the code field (mixing_gym/reference/surrogate-code-v1-small): uniform = "
               "the final balanced score of the uniform mixture on it; best = that of the 'search_64' mixture of "
               "setting d_code_field in docs/results/headline_v1_small_steps.csv (the real env's best above) played "
               "on it",
    ),
}


def reference_scores(env_id: str, preset: str = "small", target_field: str = "math") -> ReferenceScores:
    """The reference scores of ``env_id`` on ``preset`` and ``target_field``; an error names the ones that exist."""
    key = (env_id.removeprefix("mixing_gym:"), preset, target_field)
    if key not in REFERENCE_SCORES:
        known = ", ".join(f"{env} on {name!r}, the {field!r} field" for env, name, field in REFERENCE_SCORES)
        raise KeyError(f"No reference scores for {key[0]} on preset {preset!r}, the {target_field!r} field; there "
                       f"are some for {known}. REFERENCE_SCORES says where each comes from.")
    return REFERENCE_SCORES[key]


def get_normalized_score(env_id: str, score: float | np.ndarray, preset: str = "small",
                         target_field: str = "math") -> float | np.ndarray:
    """``score`` (final balanced scores, a number or an array) on the reference scale: 0 = uniform, 100 = the
    search's best (:data:`REFERENCE_SCORES`).

    On ``"DataMixingSurrogate-v1"`` (its reference surrogate of ``target_field``) the two points are the same two
    policies replayed on the surrogate, so 0 is uniform there too: the surrogate is deterministic and fit on real
    episodes, and scores uniform +0.0700 on math, where the real env scores it +0.0623; with the real env's points
    its uniform would read 36. A surrogate of your own has neither: score its policies on the real env.

    Args:
        env_id: the env the score was measured on (``"DataMixing-v1"`` or ``"DataMixingSurrogate-v1"``, with or
            without the ``mixing_gym:`` prefix).
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
