"""A learned model of a mixing env's dynamics: fit on recorded trajectories, saved without pickle, measured.

A :class:`SurrogateModel` predicts each benchmark's next improvement from per-benchmark features (its
current improvement, the weight of its domain and of its field in the new mixture, the progress of the
episode, its base score), so it is not tied to one number of domains. On ``DataMixing-v1``, whose task
benchmarks draw on many domains unequally, it also reads every domain's weight with coefficients of
each benchmark's own (``per_domain``), and the domains' epochs, which it steps as the real env counts
them; a bootstrap ensemble (by episode) measures where it is unsure. It is fit with scikit-learn and
stepped by compiled loops (:mod:`mixing_gym.kernels`); the envs that step it live in
:mod:`mixing_gym.envs.surrogate`. What each benchmark measures comes from the recorded
:class:`~mixing_gym.layout.MixingLayout`, and the field aggregates are formed by the one rule of
:func:`mixing_gym.layout.field_scores`.

:func:`fidelity` measures one-step predictions on held-out trajectories. The module needs numpy,
numba, scikit-learn and scipy: no torch, no lm-eval.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixing_gym.kernels import polynomial_changes
from mixing_gym.layout import FIELDS, MixingLayout, allocate, field_scores
from mixing_gym.mdp import MAX_EPOCHS, SOURCE_SCORE, TARGET_SCORE
from mixing_gym.storage import atomic_write_bytes, atomic_write_json, sha256_file
from mixing_gym.trajectories import TrajectoryDataset, as_dataset

FORMAT_VERSION = 3
METADATA_FILE = "surrogate.json"
ARRAYS_FILE = "arrays.npz"
#: Per-benchmark inputs of the dynamics; the model is a ridge regression on all their products up to degree 2.
#: Square roots of the weights, because what a step teaches grows less than linearly with a domain's tokens
#: (on micro trajectories they predicted single-field schedules, outside the fitted mixtures, best).
FEATURES = ("improvement", "progress", "sqrt_own_weight", "sqrt_field_weight", "base_score", "group_mean_improvement")
# Index pairs (i, j), i <= j, over [1, features...]: every product of degree <= 2, the constant first.
_LEFT, _RIGHT = np.triu_indices(len(FEATURES) + 1)
NUM_TERMS = len(_LEFT)
#: Per-domain inputs of ``per_domain`` models, shared by all benchmarks and weighted by each benchmark's own
#: coefficients: every domain's ``sqrt(weight)``, the same times the progress, and with epochs observed
#: ``sqrt(weight) / (1 + epochs)`` (a domain trained on many times teaches less per token).
DOMAIN_FEATURES = ("sqrt_weight", "sqrt_weight_x_progress", "sqrt_weight_over_epochs")
RIDGE_ALPHAS = np.logspace(-6, 3, 19)
#: Recorded epoch increases below this are float32 rounding, not a sequence trained on.
EPOCH_TOLERANCE = 1e-6
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


def domain_width(layout: MixingLayout, per_domain: bool) -> int:
    """How many domain features a model reads: :data:`DOMAIN_FEATURES` per domain (the epochs one only where
    the layout observes epochs), or none for a grouped model."""
    return (len(DOMAIN_FEATURES) - (not layout.observe_epochs)) * layout.num_domains if per_domain else 0


def benchmark_groups(layout: MixingLayout, per_domain: bool = False) -> list[str]:
    """Each benchmark's group, whose members share the dynamics' coefficients: ``<field>/<kind>``, or with
    ``per_domain`` the benchmark itself (each reads the domains with coefficients of its own)."""
    return list(layout.benchmark_names) if per_domain else [f"{b.field}/{b.kind}" for b in layout.benchmarks]


def _side_by_side(coefficients: np.ndarray) -> np.ndarray:
    """``(T, L * S)``: members' term coefficients ``(L, T, S)`` side by side, one member's S columns after another's
    (the layout :func:`mixing_gym.kernels.polynomial_changes` reads its later columns in)."""
    members, terms, width = coefficients.shape
    return np.ascontiguousarray(coefficients.transpose(1, 0, 2).reshape(terms, members * width))


def _by_member(columns: np.ndarray, width: int) -> np.ndarray:
    """``(L, N, S)``: the ``(N, L * S)`` columns of :func:`_side_by_side` coefficients, member by member."""
    return columns.reshape(len(columns), -1, width).transpose(1, 0, 2)


class SurrogateModel:
    """One-step dynamics of a mixing env's benchmark improvements, learned from trajectories.

    For benchmark ``b`` (of domain ``d`` and field ``f``) after a step on mixture ``w`` from progress
    ``p``, the model predicts the change of its improvement from the :data:`FEATURES`: its current
    improvement, ``p``, ``sqrt(w_d)`` (for a field-level benchmark, of the field's mean weight), the square
    root of the field's total weight, the benchmark's base score and the mean current improvement of its
    group, as a ridge regression on all products of these features up to degree 2. Benchmarks of one group
    (field and kind) share its coefficients; a ``per_domain`` model gives every benchmark its own, and adds
    the :data:`DOMAIN_FEATURES` of every domain (so a task that draws on some domains and not others can be
    represented). Features are clipped to the range seen in fitting: a polynomial fed back its own output
    would otherwise extrapolate without bound over an episode. An ensemble of ``E`` models predicts with
    the first, fit on every episode; the others are fit on bootstrap resamples of the episodes, and the
    spread of all ``E`` says where the data is thin (their mean predicted held-out ``small`` episodes
    worse than the model fit on all of them). Build one with :meth:`fit` or :meth:`load`.

    Args:
        metadata: what the model was fit on and how: ``layout`` (the recorded
            :class:`~mixing_gym.layout.MixingLayout` as JSON), ``groups``, ``per_domain``, the dataset's
            ``env_id`` and ``env_kwargs``, ``features`` and a ``fit`` summary.
        coefficients: ``(E, G, P)`` coefficients per ensemble member and group (in ``metadata["groups"]``
            order): the polynomial's (intercept first), then with ``per_domain`` those of the domain features.
        residual_std: ``(B,)`` root-mean-square training residual of each benchmark's change (the scale
            of the optional step noise).
        feature_range: ``(2, len(FEATURES))`` lowest and highest value of each feature in the fitted data.
        epochs_per_sequence: ``(K,)`` the epochs one training sequence of each domain adds (its sequence
            length over its unique tokens; zeros where the layout does not observe epochs). A step trains
            ``metadata["sequences_per_step"]`` whole sequences, split by the mixture as the real env splits
            them (:func:`~mixing_gym.layout.allocate`), so epochs step exactly as the real env counts them.
    """

    def __init__(self, metadata: dict[str, Any], coefficients: np.ndarray, residual_std: np.ndarray,
                 feature_range: np.ndarray, epochs_per_sequence: np.ndarray | None = None):
        self.metadata = metadata
        self.layout = layout = MixingLayout.from_json(metadata["layout"])
        self.num_domains, self.num_benchmarks = layout.num_domains, layout.num_benchmarks
        self.per_domain = bool(metadata.get("per_domain", False))
        self.domain_width = domain_width(layout, self.per_domain)

        groups = list(metadata["groups"])
        coefficients = np.asarray(coefficients, dtype=np.float64)
        epochs_per_sequence = (np.zeros(self.num_domains) if epochs_per_sequence is None
                               else np.asarray(epochs_per_sequence, dtype=np.float64))
        shapes = (coefficients.shape[1:], np.shape(residual_std), np.shape(feature_range), epochs_per_sequence.shape)
        expected = ((len(groups), NUM_TERMS + self.domain_width), (self.num_benchmarks,), (2, len(FEATURES)),
                    (self.num_domains,))
        if shapes != expected or groups != sorted(set(benchmark_groups(layout, self.per_domain))):
            raise ValueError(f"Surrogate arrays have shapes {shapes}; expected {expected} for its metadata "
                             f"(features {list(FEATURES)}, per_domain={self.per_domain}, groups {groups}).")
        self.coefficients = coefficients
        self.ensemble_size = len(coefficients)
        self.residual_std = np.asarray(residual_std, dtype=np.float64)
        self.feature_range = np.asarray(feature_range, dtype=np.float64)
        self.epochs_per_sequence = epochs_per_sequence
        self.sequences_per_step = int(metadata.get("sequences_per_step", 0))
        self.group_of_benchmark = np.array([groups.index(group) for group in benchmark_groups(layout, self.per_domain)])
        self._benchmark_coefficients = coefficients[:, self.group_of_benchmark]  # (E, B, P), gathered once

        # Index arrays that turn a batch of mixtures into per-benchmark features in a few numpy calls.
        k = self.num_domains
        field_of_domain = np.array([FIELDS.index(f) for f in layout.domain_fields])
        self._field_onehot = np.eye(len(FIELDS))[field_of_domain]  # (K, 2)
        self._domains_per_field = np.maximum(self._field_onehot.sum(axis=0), 1.0)
        self._benchmark_field = np.array([FIELDS.index(b.field) for b in layout.benchmarks])
        # weights extended by each field's mean weight: a field-level benchmark reads its field's mean
        self._own_index = np.array([layout.domain_names.index(b.domain) if b.domain is not None
                                    else k + FIELDS.index(b.field) for b in layout.benchmarks])
        # Group means among the benchmarks of one field and kind, whatever the coefficients are shared by.
        kinds = np.array(benchmark_groups(layout))
        same_group = kinds[:, None] == kinds[None, :]
        self._group_mean = (same_group / same_group.sum(axis=1, keepdims=True)).T  # x @ this: group means
        self._base = np.array([layout.base_scores[name] for name in layout.benchmark_names], dtype=np.float64)
        self._lower_is_better = np.array([b.lower_is_better for b in layout.benchmarks])
        self._members = layout.aggregate_members
        _, group_index, group_sizes = np.unique(kinds, return_inverse=True, return_counts=True)
        step_coefficients = self._benchmark_coefficients.transpose(0, 2, 1)  # (E, P, B)
        self._term_coefficients = np.ascontiguousarray(step_coefficients[:, :NUM_TERMS])
        self._domain_coefficients = np.ascontiguousarray(step_coefficients[:, NUM_TERMS:])
        # The field aggregates are means, linear in the changes: a member's domain-feature share of them is one
        # (D, 2) product, not a (D, B) one and then a mean (what a penalised step needs of the other members).
        members = self._members.astype(np.float64)
        mean_of_field = members / np.maximum(members.sum(axis=0), 1.0)  # (B, 2); 0 for a field without benchmarks
        aggregate_coefficients = self._domain_coefficients @ mean_of_field  # (E, D, 2)
        self._domain_aggregate_coefficients = np.ascontiguousarray(  # (D, E * 2)
            aggregate_coefficients.transpose(1, 0, 2).reshape(self.domain_width, 2 * self.ensemble_size))
        self._kernel_arrays = (  # what mixing_gym.kernels.polynomial_changes reads besides the states
            self._own_index, self._benchmark_field, field_of_domain, self._domains_per_field,
            group_index, group_sizes.astype(np.float64), self._base, *self.feature_range,
            _LEFT, _RIGHT)
        # What a penalised step needs of the members after the first: the benchmarks the field aggregates read.
        aggregated = np.flatnonzero(self._members.any(axis=1))
        self._aggregated_members = self._members[aggregated]  # (S, 2): which field each one feeds
        self._spread_coefficients = _side_by_side(self._term_coefficients[1:, :, aggregated])
        self._spread_columns = np.tile(aggregated, self.ensemble_size - 1)
        self._no_spread = (self._spread_coefficients[:, :0], self._spread_columns[:0])  # the first member alone

    # ------------------------------------------------------------------------------------------ dynamics

    def features(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray) -> np.ndarray:
        """``(N, B, len(FEATURES))`` inputs of the dynamics for N states ``(N, B)``, mixtures ``(N, K)``
        and progress values ``(N,)``."""
        return self._design(improvements, weights, progress)[..., 1:]

    def _design(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray) -> np.ndarray:
        """``(N, B, 1 + len(FEATURES))``: a column of ones, then the features, unclipped: what fitting reads.
        A step evaluates the same features, clipped, in :func:`mixing_gym.kernels.polynomial_changes`."""
        field_weight = weights @ self._field_onehot  # (N, 2)
        extended = np.concatenate([weights, field_weight / self._domains_per_field], axis=1)
        columns = [improvements, progress[:, None], np.sqrt(extended)[:, self._own_index],
                   np.sqrt(field_weight)[:, self._benchmark_field], self._base, improvements @ self._group_mean]
        design = np.empty((*improvements.shape, 1 + len(FEATURES)))
        design[..., 0] = 1.0
        for index, column in enumerate(columns, start=1):
            design[..., index] = column
        return design

    def domain_features(self, weights: np.ndarray, progress: np.ndarray, epochs: np.ndarray | None) -> np.ndarray:
        """``(N, domain_width)`` :data:`DOMAIN_FEATURES` of mixtures ``(N, K)`` at progress ``(N,)`` with the
        domains' epochs so far ``(N, K)`` (ignored unless the layout observes them)."""
        root = np.sqrt(weights)
        blocks = [root, root * progress[:, None]]
        if self.layout.observe_epochs:
            blocks.append(root / (1.0 + epochs))
        return np.concatenate(blocks, axis=1)

    def member_changes(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray,
                       epochs: np.ndarray | None = None, members: slice = slice(None)) -> np.ndarray:
        """``(E, N, B)`` the ensemble members' predicted change of every benchmark's improvement over one
        step, from states ``(N, B)``, mixtures ``(N, K)``, progress ``(N,)`` and epochs so far ``(N, K)``
        (``members`` selects some of them)."""
        selected = self._term_coefficients[members]
        first, later, domain = self._polynomial(improvements, weights, progress, epochs, selected[0],
                                                _side_by_side(selected[1:]),
                                                np.tile(np.arange(self.num_benchmarks), len(selected) - 1))
        changes = np.concatenate([first[None], _by_member(later, self.num_benchmarks)])
        if self.domain_width:
            changes += domain @ self._domain_coefficients[members]  # (N, D) @ (E, D, B): one BLAS call per member
        return changes

    def change_and_spread(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray,
                          epochs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(N, B)`` the first member's predicted change of every benchmark's improvement over one step (what
        :meth:`predict_change` gives) and ``(N, E, 2)`` every member's predicted change of the source and target
        aggregates, whose spread is the ensemble's disagreement (:func:`mixing_gym.kernels.disagreement`): what a
        penalised step needs, at a fraction more than the first member alone rather than ``E`` times (the other
        members' polynomial terms are computed only for the benchmarks the aggregates read, and their domain
        features enter the aggregates through one small product). Arguments as :meth:`member_changes`."""
        change, later, domain = self._polynomial(improvements, weights, progress, epochs, self._term_coefficients[0],
                                                 self._spread_coefficients, self._spread_columns)
        count = len(change)
        aggregates = np.empty((count, self.ensemble_size, 2))
        aggregates[:, 0] = self.aggregates(change)
        # (N, L * S) later columns, member after member: (N * L, S) rows of the aggregated benchmarks, no copy
        aggregates[:, 1:] = field_scores(later.reshape(-1, len(self._aggregated_members)),
                                         self._aggregated_members).reshape(count, -1, 2)
        if self.domain_width:
            change += domain @ self._domain_coefficients[0]
            aggregates += (domain @ self._domain_aggregate_coefficients).reshape(aggregates.shape)
        return change, aggregates

    def predict_change(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray,
                       epochs: np.ndarray | None = None) -> np.ndarray:
        """``(N, B)`` predicted change of every benchmark's improvement over one step: the first member's,
        fit on every episode (see :meth:`member_changes`)."""
        change, _, domain = self._polynomial(improvements, weights, progress, epochs, self._term_coefficients[0],
                                             *self._no_spread)
        if self.domain_width:
            change += domain @ self._domain_coefficients[0]
        return change

    def _polynomial(self, improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray,
                    epochs: np.ndarray | None, coefficients: np.ndarray, later_coefficients: np.ndarray,
                    later_columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`mixing_gym.kernels.polynomial_changes` on the states: ``(N, B)`` under one member's
        ``coefficients`` ``(T, B)``, ``(N, C)`` under ``later_coefficients`` ``(T, C)`` of the benchmarks
        ``later_columns`` ``(C,)``, and the domain features."""
        if self.per_domain and self.layout.observe_epochs and epochs is None:
            raise ValueError("This surrogate reads the domains' epochs: pass epochs=(N, K).")
        epochs = np.zeros_like(weights) if epochs is None else epochs
        states = (np.ascontiguousarray(array, dtype=np.float64) for array in (improvements, weights, progress, epochs))
        return polynomial_changes(*states, np.ascontiguousarray(coefficients), later_coefficients, later_columns,
                                  *self._kernel_arrays, self.domain_width, self.layout.observe_epochs)

    def epochs_added(self, weights: np.ndarray) -> np.ndarray:
        """``(N, K)`` epochs a step on mixtures ``(N, K)`` adds to each domain: whole sequences, as the real env."""
        return allocate(weights, self.sequences_per_step) * self.epochs_per_sequence

    def aggregates(self, improvements: np.ndarray) -> np.ndarray:
        """``(..., 2)`` source and target scores of improvements ``(..., B)``, as the real env forms them."""
        return field_scores(improvements, self._members)

    def raw_scores(self, improvements: np.ndarray) -> np.ndarray:
        """Raw benchmark scores (bits per byte, accuracy) whose improvements over the base are ``improvements``."""
        change = improvements * np.abs(self._base)
        return np.where(self._lower_is_better, self._base - change, self._base + change)

    # ------------------------------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, dataset: TrajectoryDataset | str | Path, per_domain: bool | None = None, ensemble: int = 1,
            seed: int = 0) -> SurrogateModel:
        """Fit the dynamics to every recorded step of ``dataset`` (a :class:`TrajectoryDataset` or a path
        that :func:`mixing_gym.trajectories.load_trajectories` reads).

        Args:
            dataset: the trajectories.
            per_domain: give every benchmark its own coefficients over every domain's weight (default: where
                the layout observes epochs, ``DataMixing-v1``'s; v0's surrogate stays the grouped model).
            ensemble: models in all: one on every episode, which predicts, and ``ensemble - 1`` on bootstrap
                resamples of the episodes, whose spread measures the model's uncertainty.
            seed: seeds the resamples.
        """
        dataset = as_dataset(dataset)
        if not dataset.episodes:
            raise ValueError("The trajectory dataset has no episodes; collect some before fitting a surrogate.")
        if ensemble < 1:
            raise ValueError(f"ensemble must be at least 1 model, got {ensemble}.")
        layout = dataset.layout
        per_domain = layout.observe_epochs if per_domain is None else bool(per_domain)
        groups = sorted(set(benchmark_groups(layout, per_domain)))
        metadata = {
            "format": FORMAT_VERSION,
            "env_id": dataset.env_id,
            "env_kwargs": _json_ready(dataset.env_kwargs, "env_kwargs"),
            "layout": layout.to_json(),
            "features": list(FEATURES),
            "per_domain": per_domain,
            "domain_features": list(DOMAIN_FEATURES) if per_domain else [],
            "groups": groups,
        }
        unlimited = np.array([np.full(len(FEATURES), -np.inf), np.full(len(FEATURES), np.inf)])
        num_benchmarks, width = layout.num_benchmarks, NUM_TERMS + domain_width(layout, per_domain)
        untrained = cls(metadata, np.zeros((1, len(groups), width)), np.zeros(num_benchmarks), unlimited)
        steps = untrained.transitions(dataset)
        untrained.check_aggregates(steps)
        epochs_per_sequence, metadata["sequences_per_step"] = (
            _epoch_quanta(steps) if layout.observe_epochs else (np.zeros(layout.num_domains), 0))

        design = untrained._design(steps.improvements, steps.weights, steps.progress)
        feature_range = np.stack([design[..., 1:].min(axis=(0, 1)), design[..., 1:].max(axis=(0, 1))])
        terms = design[..., _LEFT] * design[..., _RIGHT]
        domain = untrained.domain_features(steps.weights, steps.progress, steps.epochs) if per_domain else None

        rng = np.random.default_rng(seed)
        episodes = np.unique(steps.episode)
        coefficients = np.zeros((ensemble, len(groups), width))
        alphas = {}
        for member in range(ensemble):
            # The first model: every transition; the others: each a bootstrap resample of whole episodes.
            rows = (np.arange(len(steps.episode)) if member == 0 else
                    np.concatenate([np.flatnonzero(steps.episode == e)
                                    for e in rng.choice(episodes, size=len(episodes))]))
            for g, group in enumerate(groups):
                members = untrained.group_of_benchmark == g
                inputs = terms[rows][:, members, 1:].reshape(-1, NUM_TERMS - 1)  # term 0 is the constant
                if per_domain:
                    inputs = np.concatenate([inputs, domain[rows]], axis=1)  # one benchmark per group
                coefficients[member, g], alpha = _ridge(inputs, steps.changes[rows][:, members].reshape(-1))
                alphas.setdefault(group, []).append(alpha)

        fitted = cls(metadata, coefficients, np.zeros(num_benchmarks), feature_range, epochs_per_sequence)
        predicted = fitted.predict_change(steps.improvements, steps.weights, steps.progress, steps.epochs)
        metadata["fit"] = {"episodes": len(dataset.episodes), "transitions": len(steps.changes),
                           "ensemble": ensemble, "seed": seed,
                           "ridge_alpha": {group: values[0] if ensemble == 1 else values
                                           for group, values in alphas.items()},
                           "r2": r_squared(steps.changes.ravel(), predicted.ravel())}
        residual_std = np.sqrt(np.mean((steps.changes - predicted) ** 2, axis=0))
        return cls(metadata, coefficients, residual_std, feature_range, epochs_per_sequence)

    def transitions(self, dataset: TrajectoryDataset) -> Transitions:
        """Every recorded step of ``dataset`` (which must have this model's domains and benchmarks)."""
        differences = self.layout.differences(dataset.layout, ignore=ACTION_ENTRIES)
        if differences:
            raise ValueError("The trajectories come from another env config than the surrogate's; use "
                             "trajectories of the same env config. Differences: " + "; ".join(differences))
        size = len(self.layout.observation_names)
        before, after, episode_of_step = [], [], []
        for number, episode in enumerate(dataset.episodes):
            observations = np.asarray(episode.observations, dtype=np.float64)
            if observations.ndim != 2 or observations.shape[1] != size or len(observations) < 2:
                raise ValueError(f"Episode {number} has observations of shape {observations.shape}; expected "
                                 f"(steps + 1, {size}) with at least one step.")
            before.append(observations[:-1])
            after.append(observations[1:])
            episode_of_step.append(np.full(len(observations) - 1, number))
        before, after = np.concatenate(before), np.concatenate(after)
        layout = self.layout
        scores, aggregates, epochs = layout.score_slice, layout.aggregate_slice, layout.epochs_slice
        return Transitions(improvements=before[:, scores], weights=after[:, layout.weight_slice],
                           progress=before[:, layout.progress_index],
                           changes=after[:, scores] - before[:, scores],
                           aggregate_changes=after[:, aggregates] - before[:, aggregates],
                           recorded_aggregates=after[:, aggregates], next_improvements=after[:, scores],
                           epochs=before[:, epochs], next_epochs=after[:, epochs],
                           episode=np.concatenate(episode_of_step))

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
                 feature_range=self.feature_range, epochs_per_sequence=self.epochs_per_sequence)
        atomic_write_bytes(folder / ARRAYS_FILE, buffer.getvalue())
        atomic_write_json(folder / METADATA_FILE, {**self.metadata, "arrays_sha256": sha256_file(folder / ARRAYS_FILE)})
        return folder

    @classmethod
    def load(cls, path: str | Path) -> SurrogateModel:
        """Read a model written by :meth:`save` in this version's format."""
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
            return cls(metadata, arrays["coefficients"], arrays["residual_std"], arrays["feature_range"],
                       arrays["epochs_per_sequence"])


def _ridge(inputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, float]:
    """Ridge regression of ``targets`` on standardised ``inputs``, its penalty by leave-one-out: the
    coefficients (intercept first) on the raw inputs, so that stepping needs no scikit-learn, and the penalty."""
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(inputs)
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(scaler.transform(inputs), targets)
    slopes = ridge.coef_ / scaler.scale_
    return np.concatenate([[ridge.intercept_ - slopes @ scaler.mean_], slopes]), float(ridge.alpha_)


def _epoch_quanta(steps: Transitions) -> tuple[np.ndarray, int]:
    """The epochs one sequence of each domain adds, and the sequences a step trains, read off the recorded
    epochs: a domain's smallest recorded increase is one sequence (a collection's peaked and tilted mixtures
    give each domain single sequences), and every step's increases add up to the same number of sequences.
    A domain never trained on in the trajectories gets 0: its epochs stay 0 on the surrogate."""
    added = steps.next_epochs - steps.epochs
    valid = (steps.next_epochs < MAX_EPOCHS).all(axis=1)  # clipped observations hide the true increase
    quanta = np.zeros(added.shape[1])
    for domain in range(added.shape[1]):
        positive = added[valid, domain][added[valid, domain] > EPOCH_TOLERANCE]
        quanta[domain] = positive.min() if positive.size else 0.0
    sequences = np.where(quanta > 0, added / np.where(quanta > 0, quanta, 1.0), 0.0)[valid].sum(axis=1)
    return quanta, int(np.median(np.rint(sequences)))


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
        epochs: ``(n, K)`` each domain's epochs before the step (``(n, 0)`` where the layout has none).
        next_epochs: ``(n, K)`` the same after the step.
        episode: ``(n,)`` the number of the episode each step belongs to.
    """

    improvements: np.ndarray
    weights: np.ndarray
    progress: np.ndarray
    changes: np.ndarray
    aggregate_changes: np.ndarray
    recorded_aggregates: np.ndarray
    next_improvements: np.ndarray
    epochs: np.ndarray
    next_epochs: np.ndarray
    episode: np.ndarray


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
    raise ValueError(f"The surrogate env needs surrogate=<SurrogateModel or the folder it was saved to>, got "
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
    predicted = model.predict_change(steps.improvements, steps.weights, steps.progress, steps.epochs)
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
