"""The regression half of RegMix: predict a run's score from its mixture, usable on any table of runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

MODELS = ("auto", "gbm", "ridge")
#: With fewer runs than this, ``"auto"`` fits the ridge: boosted trees need many rows per leaf.
GBM_MIN_ROWS = 64


def _table(table: pd.DataFrame | str | Path) -> pd.DataFrame:
    return table if isinstance(table, pd.DataFrame) else pd.read_csv(table)


class MixtureRegressor:
    """Fits ``score = f(mixture weights)`` on a table of runs and ranks unseen mixtures (Liu et al., 2024,
    "RegMix: Data Mixture as Regression for Language Model Pre-training").

    Args:
        model: ``"gbm"``: LightGBM's ``LGBMRegressor``, the paper's model (here 500 trees at learning rate
            0.05, single-threaded and deterministic, so a fit is reproducible); ``"ridge"``: ridge regression,
            its penalty chosen by leave-one-out, on the weights and their pairwise products (the paper's
            linear model plus interactions, for small tables); ``"auto"``: gbm from 64 rows on, else ridge.
            ``experiments/regmix_regressor`` compares them on real runs.
        seed: seed of the gradient-boosting model.
    """

    def __init__(self, model: str = "auto", seed: int = 0):
        if model not in MODELS:
            raise ValueError(f"Unknown model {model!r}; use one of {MODELS}.")
        self.model = model
        self.seed = seed
        self.estimator = None
        self.weight_columns: list[str] = []
        self.score_column = ""

    def _build(self, rows: int):
        if self.model == "gbm" or (self.model == "auto" and rows >= GBM_MIN_ROWS):
            # Leaves shrink with the table (LightGBM's default of 20 rows per leaf leaves few splits on
            # a hundred runs); deterministic=True on one thread makes a refit give the same model.
            return LGBMRegressor(n_estimators=500, learning_rate=0.05, min_child_samples=min(20, max(2, rows // 20)),
                                 random_state=self.seed, deterministic=True, n_jobs=1, verbose=-1)
        return make_pipeline(PolynomialFeatures(degree=2, include_bias=False), StandardScaler(),
                             RidgeCV(alphas=np.logspace(-4, 3, 15)))

    def fit(self, table: pd.DataFrame | str | Path, weight_columns: Sequence[str],
            score_column: str) -> MixtureRegressor:
        """Fit on ``table`` (a DataFrame or a CSV path): one row per run, its weights and its score."""
        frame = _table(table)
        missing = [c for c in [*weight_columns, score_column] if c not in frame.columns]
        if missing:
            raise KeyError(f"The table has no columns {missing}; it has {list(frame.columns)}.")
        if len(frame) < 2:
            raise ValueError(f"Need at least 2 runs to fit a regression, got {len(frame)}.")
        self.weight_columns, self.score_column = list(weight_columns), score_column
        self.estimator = self._build(len(frame))
        self.estimator.fit(frame[self.weight_columns].to_numpy(float), frame[score_column].to_numpy(float))
        return self

    def predict(self, weights: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Predicted scores of mixtures: an ``(n, K)`` array in the fitted column order, or a table with them."""
        if self.estimator is None:
            raise RuntimeError("Call fit(table, weight_columns, score_column) before predict().")
        if isinstance(weights, pd.DataFrame):
            weights = weights[self.weight_columns].to_numpy(float)
        return self.estimator.predict(np.atleast_2d(np.asarray(weights, float)))

    def rank_correlation(self, held_out: pd.DataFrame | str | Path) -> float:
        """Spearman's rank correlation between predicted and actual scores on held-out runs (the paper's metric)."""
        frame = _table(held_out)
        return float(spearmanr(self.predict(frame), frame[self.score_column].to_numpy(float)).statistic)
