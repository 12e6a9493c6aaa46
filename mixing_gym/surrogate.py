"""A learned model of ``DataMixing-v0``'s dynamics: fit on recorded trajectories, saved without pickle, measured.

A :class:`SurrogateModel` predicts each benchmark's next improvement from per-benchmark features (its
current improvement, the weight of its domain and of its field in the new mixture, the progress of the
episode, its base score), so it is not tied to one number of domains. It is fit with scikit-learn and
evaluated in plain numpy; the envs that step it live in :mod:`mixing_gym.envs.surrogate`. What each
benchmark measures comes from the recorded :class:`~mixing_gym.layout.MixingLayout`, and the field
aggregates are formed by the one rule of :func:`mixing_gym.layout.field_scores`.

:func:`fidelity` measures one-step predictions on held-out trajectories. The module needs numpy,
scikit-learn and scipy: no torch, no lm-eval.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixing_gym.layout import FIELDS, MixingLayout, field_scores
from mixing_gym.mdp import SOURCE_SCORE, TARGET_SCORE
from mixing_gym.storage import atomic_write_bytes, atomic_write_json, sha256_file
from mixing_gym.trajectories import TrajectoryDataset, as_dataset

FORMAT_VERSION = 2
METADATA_FILE = "surrogate.json"
ARRAYS_FILE = "arrays.npz"
#: Per-benchmark inputs of the dynamics; the model is a ridge regression on all their products up to degree 2.
#: Square roots of the weights, because what a step teaches grows less than linearly with a domain's tokens
#: (on micro trajectories they predicted single-field schedules, outside the fitted mixtures, best).
FEATURES = ("improvement", "progress", "sqrt_own_weight", "sqrt_field_weight", "base_score", "group_mean_improvement")
# Index pairs (i, j), i <= j, over [1, features...]: every product of degree <= 2, the constant first.
_LEFT, _RIGHT = np.triu_indices(len(FEATURES) + 1)
NUM_TERMS = len(_LEFT)
RIDGE_ALPHAS = np.logspace(-6, 3, 19)
#: Recorded aggregates are float32 means of float32 improvements; anything further off is another aggregation.
AGGREGATE_TOLERANCE = 1e-4
#: Layout entries that change how an env is driven, not what its observations mean.
ACTION_ENTRIES = ("action_mode", "temperature")


def _json_ready(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj))
    except TypeError as error:
        raise ValueError(f"The dataset's {what} must be JSON-serialisable to be saved with the surrogate "
                         f"({error}); record plain values (a preset name, not a ProxyPreset object).") from None


def benchmark_groups(layout: MixingLayout) -> list[str]:
    """Each benchmark's group, ``<field>/<kind>``: benchmarks of one group share the dynamics' coefficients."""
    return [f"{b.field}/{b.kind}" for b in layout.benchmarks]


class SurrogateModel:
    """One-step dynamics of ``DataMixing-v0``'s benchmark improvements, learned from trajectories.

    For benchmark ``b`` (of domain ``d`` and field ``f``) after a step on mixture ``w`` from progress
    ``p``, the model predicts the change of its improvement from the :data:`FEATURES`: its current
    improvement, ``p``, ``sqrt(w_d)`` (for a field-level benchmark, of the field's mean weight), the square
    root of the field's total weight, the benchmark's base score and the mean current improvement of its
    group. Benchmarks of one group (field and kind) share one ridge regression on all products of these
    features up to degree 2. Features are clipped to the range seen in fitting: a polynomial fed back its
    own output would otherwise extrapolate without bound over an episode. Build one with :meth:`fit` or
    :meth:`load`.

    Args:
        metadata: what the model was fit on and how: ``layout`` (the recorded
            :class:`~mixing_gym.layout.MixingLayout` as JSON), ``groups``, the dataset's ``env_id`` and
            ``env_kwargs``, ``features`` and a ``fit`` summary.
        coefficients: ``(G, P)`` polynomial coefficients per group (in ``metadata["groups"]`` order), the
            intercept first.
        residual_std: ``(B,)`` root-mean-square training residual of each benchmark's change (the scale
            of the optional step noise).
        feature_range: ``(2, len(FEATURES))`` lowest and highest value of each feature in the fitted data.
    """

    def __init__(self, metadata: dict[str, Any], coefficients: np.ndarray, residual_std: np.ndarray,
                 feature_range: np.ndarray):
        self.metadata = metadata
        self.layout = layout = MixingLayout.from_json(metadata["layout"])
        if layout.observe_epochs:
            raise ValueError("The surrogate models DataMixing-v0's dynamics; trajectories with epochs in the "
                             "observation (DataMixing-v1's finite target data) are not supported yet.")
        self.num_domains, self.num_benchmarks = layout.num_domains, layout.num_benchmarks

        groups = list(metadata["groups"])
        coefficients = np.asarray(coefficients, dtype=np.float64)
        shapes = (coefficients.shape, np.shape(residual_std), np.shape(feature_range))
        expected = ((len(groups), NUM_TERMS), (self.num_benchmarks,), (2, len(FEATURES)))
        if shapes != expected:
            raise ValueError(f"Surrogate arrays have shapes {shapes}; expected {expected} for its metadata "
                             f"(features {list(FEATURES)}).")
        self.coefficients = coefficients
        self.residual_std = np.asarray(residual_std, dtype=np.float64)
        self.feature_range = np.asarray(feature_range, dtype=np.float64)
        self._design_low, self._design_high = np.insert(self.feature_range, 0, 1.0, axis=1)
        self.group_of_benchmark = np.array([groups.index(group) for group in benchmark_groups(layout)])
        self._benchmark_coefficients = coefficients[self.group_of_benchmark]  # (B, P), gathered once

        # Index arrays that turn a batch of mixtures into per-benchmark features in a few numpy calls.
        k = self.num_domains
        field_of_domain = np.array([FIELDS.index(f) for f in layout.domain_fields])
        self._field_onehot = np.eye(len(FIELDS))[field_of_domain]  # (K, 2)
        self._domains_per_field = np.maximum(self._field_onehot.sum(axis=0), 1.0)
        self._benchmark_field = np.array([FIELDS.index(b.field) for b in layout.benchmarks])
        # weights extended by each field's mean weight: a field-level benchmark reads its field's mean
        self._own_index = np.array([layout.domain_names.index(b.domain) if b.domain is not None
                                    else k + FIELDS.index(b.field) for b in layout.benchmarks])
        same_group = self.group_of_benchmark[:, None] == self.group_of_benchmark[None, :]
        self._group_mean = (same_group / same_group.sum(axis=1, keepdims=True)).T  # x @ this: group means
        self._base = np.array([layout.base_scores[name] for name in layout.benchmark_names], dtype=np.float64)
        self._lower_is_better = np.array([b.lower_is_better for b in layout.benchmarks])
        self._members = layout.aggregate_members

    # ------------------------------------------------------------------------------------------ dynamics

    def features(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray) -> np.ndarray:
        """``(N, B, len(FEATURES))`` inputs of the dynamics for N states ``(N, B)``, mixtures ``(N, K)``
        and progress values ``(N,)``."""
        return self._design(improvements, weights, progress)[..., 1:]

    def _design(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray) -> np.ndarray:
        """The features after a column of ones, written into one array (this runs at every step)."""
        field_weight = weights @ self._field_onehot  # (N, 2)
        extended = np.concatenate([weights, field_weight / self._domains_per_field], axis=1)
        design = np.empty((*improvements.shape, len(FEATURES) + 1))
        design[..., 0] = 1.0
        design[..., 1] = improvements
        design[..., 2] = progress[:, None]
        design[..., 3] = np.sqrt(extended[:, self._own_index])
        design[..., 4] = np.sqrt(field_weight[:, self._benchmark_field])
        design[..., 5] = self._base
        design[..., 6] = improvements @ self._group_mean
        return design

    def predict_change(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray) -> np.ndarray:
        """``(N, B)`` predicted change of every benchmark's improvement over one step (see :meth:`features`)."""
        design = self._design(improvements, weights, progress)
        np.maximum(design, self._design_low, out=design)
        np.minimum(design, self._design_high, out=design)
        terms = design[..., _LEFT] * design[..., _RIGHT]
        return np.einsum("nbp,bp->nb", terms, self._benchmark_coefficients)

    def aggregates(self, improvements: np.ndarray) -> np.ndarray:
        """``(N, 2)`` source and target scores of improvements ``(N, B)``, as the real env forms them."""
        return field_scores(improvements, self._members)

    def raw_scores(self, improvements: np.ndarray) -> np.ndarray:
        """Raw benchmark scores (bits per byte, accuracy) whose improvements over the base are ``improvements``."""
        change = improvements * np.abs(self._base)
        return np.where(self._lower_is_better, self._base - change, self._base + change)

    # ------------------------------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, dataset: TrajectoryDataset | str | Path) -> SurrogateModel:
        """Fit the dynamics to every recorded step of ``dataset`` (a :class:`TrajectoryDataset` or a path
        that :func:`mixing_gym.trajectories.load_trajectories` reads)."""
        from sklearn.linear_model import RidgeCV
        from sklearn.preprocessing import StandardScaler

        dataset = as_dataset(dataset)
        if not dataset.episodes:
            raise ValueError("The trajectory dataset has no episodes; collect some before fitting a surrogate.")
        groups = sorted(set(benchmark_groups(dataset.layout)))
        metadata = {
            "format": FORMAT_VERSION,
            "env_id": dataset.env_id,
            "env_kwargs": _json_ready(dataset.env_kwargs, "env_kwargs"),
            "layout": dataset.layout.to_json(),
            "features": list(FEATURES),
            "groups": groups,
        }
        unlimited = np.array([np.full(len(FEATURES), -np.inf), np.full(len(FEATURES), np.inf)])
        num_benchmarks = dataset.layout.num_benchmarks
        untrained = cls(metadata, np.zeros((len(groups), NUM_TERMS)), np.zeros(num_benchmarks), unlimited)
        steps = untrained.transitions(dataset)
        untrained.check_aggregates(steps)

        design = untrained._design(steps.improvements, steps.weights, steps.progress)
        feature_range = np.stack([design[..., 1:].min(axis=(0, 1)), design[..., 1:].max(axis=(0, 1))])
        terms = design[..., _LEFT] * design[..., _RIGHT]
        coefficients = np.zeros((len(groups), terms.shape[-1]))
        alphas = {}
        for g, group in enumerate(groups):
            members = untrained.group_of_benchmark == g
            rows = terms[:, members, 1:].reshape(-1, terms.shape[-1] - 1)  # term 0 is the constant
            targets = steps.changes[:, members].reshape(-1)
            scaler = StandardScaler().fit(rows)
            ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(scaler.transform(rows), targets)
            # Fold the standardisation into the coefficients so that stepping needs no scikit-learn.
            slopes = ridge.coef_ / scaler.scale_
            coefficients[g, 0] = ridge.intercept_ - slopes @ scaler.mean_
            coefficients[g, 1:] = slopes
            alphas[group] = float(ridge.alpha_)

        predicted = cls(metadata, coefficients, np.zeros(num_benchmarks), feature_range).predict_change(
            steps.improvements, steps.weights, steps.progress)
        metadata["fit"] = {"episodes": len(dataset.episodes), "transitions": len(steps.changes),
                           "ridge_alpha": alphas, "r2": r_squared(steps.changes.ravel(), predicted.ravel())}
        residual_std = np.sqrt(np.mean((steps.changes - predicted) ** 2, axis=0))
        return cls(metadata, coefficients, residual_std, feature_range)

    def transitions(self, dataset: TrajectoryDataset) -> Transitions:
        """Every recorded step of ``dataset`` (which must have this model's domains and benchmarks)."""
        differences = self.layout.differences(dataset.layout, ignore=ACTION_ENTRIES)
        if differences:
            raise ValueError("The trajectories come from another env config than the surrogate's; use "
                             "trajectories of the same env config. Differences: " + "; ".join(differences))
        size = len(self.layout.observation_names)
        before, after = [], []
        for number, episode in enumerate(dataset.episodes):
            observations = np.asarray(episode.observations, dtype=np.float64)
            if observations.ndim != 2 or observations.shape[1] != size or len(observations) < 2:
                raise ValueError(f"Episode {number} has observations of shape {observations.shape}; expected "
                                 f"(steps + 1, {size}) with at least one step.")
            before.append(observations[:-1])
            after.append(observations[1:])
        before, after = np.concatenate(before), np.concatenate(after)
        layout = self.layout
        scores, aggregates = layout.score_slice, layout.aggregate_slice
        return Transitions(improvements=before[:, scores], weights=after[:, layout.weight_slice],
                           progress=before[:, layout.progress_index],
                           changes=after[:, scores] - before[:, scores],
                           aggregate_changes=after[:, aggregates] - before[:, aggregates],
                           recorded_aggregates=after[:, aggregates], next_improvements=after[:, scores])

    def check_aggregates(self, steps: Transitions) -> None:
        """Raise if the recorded field aggregates are not this model's means of the recorded improvements."""
        gap = np.max(np.abs(self.aggregates(steps.next_improvements) - steps.recorded_aggregates))
        if gap > AGGREGATE_TOLERANCE:
            raise ValueError(f"The recorded source/target scores differ by up to {gap:.2e} from the mean of the "
                             f"recorded improvements under aggregate={self.layout.aggregate!r}; the trajectories "
                             "are inconsistent with their recorded layout.")

    # ------------------------------------------------------------------------------------------ storage

    def save(self, path: str | Path) -> Path:
        """Write the model to the folder ``path``: ``arrays.npz`` (no pickle) and ``surrogate.json`` (the
        metadata and the arrays' sha256), written last so that a complete folder has both."""
        folder = Path(path)
        buffer = io.BytesIO()
        np.savez(buffer, coefficients=self.coefficients, residual_std=self.residual_std,
                 feature_range=self.feature_range)
        atomic_write_bytes(folder / ARRAYS_FILE, buffer.getvalue())
        atomic_write_json(folder / METADATA_FILE, {**self.metadata, "arrays_sha256": sha256_file(folder / ARRAYS_FILE)})
        return folder

    @classmethod
    def load(cls, path: str | Path) -> SurrogateModel:
        """Read a model written by :meth:`save`."""
        folder = Path(path).expanduser()
        if not (folder / METADATA_FILE).is_file() or not (folder / ARRAYS_FILE).is_file():
            raise FileNotFoundError(f"No saved surrogate at {folder} (expected {METADATA_FILE} and {ARRAYS_FILE}); "
                                    "create one with SurrogateModel.fit(trajectories).save(path).")
        metadata = json.loads((folder / METADATA_FILE).read_text())
        if metadata.get("format") != FORMAT_VERSION:
            raise ValueError(f"{folder / METADATA_FILE} has format {metadata.get('format')!r}; this version of "
                             f"mixing-gym reads format {FORMAT_VERSION}: fit the surrogate again.")
        checksum = metadata.pop("arrays_sha256", None)
        if checksum != sha256_file(folder / ARRAYS_FILE):
            raise ValueError(f"{folder / ARRAYS_FILE} does not match the checksum in {METADATA_FILE} (a partial or "
                             "altered copy); save the surrogate again.")
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as arrays:
            return cls(metadata, arrays["coefficients"], arrays["residual_std"], arrays["feature_range"])


@dataclass(frozen=True)
class Transitions:
    """Recorded steps, one row each.

    Args:
        improvements: ``(n, B)`` benchmark improvements before the step.
        weights: ``(n, K)`` the mixture of the step.
        progress: ``(n,)`` progress before the step.
        changes: ``(n, B)`` change of every benchmark's improvement.
        aggregate_changes: ``(n, 2)`` change of the source and target aggregates.
        recorded_aggregates: ``(n, 2)`` source and target aggregates after the step.
        next_improvements: ``(n, B)`` benchmark improvements after the step.
    """

    improvements: np.ndarray
    weights: np.ndarray
    progress: np.ndarray
    changes: np.ndarray
    aggregate_changes: np.ndarray
    recorded_aggregates: np.ndarray
    next_improvements: np.ndarray


def r_squared(real: np.ndarray, predicted: np.ndarray) -> float:
    """R^2 of ``predicted`` against ``real``; NaN for constant ``real``."""
    from sklearn.metrics import r2_score

    return float(r2_score(real, predicted, force_finite=False))  # NaN, not a made-up 0 or 1, for constant data


def spearman_rank(real: np.ndarray, predicted: np.ndarray) -> float:
    """Spearman's rank correlation; NaN where either side is constant."""
    from scipy.stats import spearmanr

    if np.ptp(real) == 0 or np.ptp(predicted) == 0:
        return math.nan  # a rank correlation with a constant is undefined
    return float(spearmanr(real, predicted).statistic)


def resolve_surrogate(surrogate: SurrogateModel | str | Path | None) -> SurrogateModel:
    """A :class:`SurrogateModel` from a model or the folder it was saved to."""
    if isinstance(surrogate, SurrogateModel):
        return surrogate
    if isinstance(surrogate, (str, Path)):
        return SurrogateModel.load(surrogate)
    raise ValueError(f"DataMixingSurrogate-v0 needs surrogate=<SurrogateModel or the folder it was saved to>, got "
                     f"{surrogate!r}; fit one with SurrogateModel.fit(trajectories).")


def fidelity(surrogate: SurrogateModel | str | Path, held_out: TrajectoryDataset | str | Path) -> dict[str, Any]:
    """How well ``surrogate`` predicts the per-step score changes of trajectories it was not fit on.

    One-step predictions from the recorded observations and mixtures, compared with the recorded changes:
    R^2 and Spearman rank correlation, pooled over all benchmarks, per benchmark, and for the source and
    target aggregates (which drive the reward). Returns ``{"transitions": n, "pooled": {"r2", "spearman"},
    "benchmarks": {name: {"r2", "spearman"}}, "source_score": {...}, "target_score": {...}}``.
    """
    model = resolve_surrogate(surrogate)
    steps = model.transitions(as_dataset(held_out))
    predicted = model.predict_change(steps.improvements, steps.weights, steps.progress)
    predicted_aggregates = model.aggregates(steps.improvements + predicted) - model.aggregates(steps.improvements)

    def scores(real: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
        return {"r2": r_squared(real, estimate), "spearman": spearman_rank(real, estimate)}

    names = model.layout.benchmark_names
    return {
        "transitions": len(steps.changes),
        "pooled": scores(steps.changes.ravel(), predicted.ravel()),
        "benchmarks": {name: scores(steps.changes[:, b], predicted[:, b]) for b, name in enumerate(names)},
        SOURCE_SCORE: scores(steps.aggregate_changes[:, 0], predicted_aggregates[:, 0]),
        TARGET_SCORE: scores(steps.aggregate_changes[:, 1], predicted_aggregates[:, 1]),
    }
