"""``DataMixingSurrogate-v0``: the MDP of ``DataMixing-v0`` with dynamics learned from recorded trajectories.

A :class:`SurrogateModel` predicts each benchmark's next improvement from per-benchmark features (its
current improvement, the weight of its domain and of its field in the new mixture, the progress of the
episode, its base score), so it is not tied to one number of domains. It is fit with scikit-learn and
evaluated in plain numpy, which steps thousands of envs per call: :class:`DataMixingSurrogateEnv` is one
env, :class:`DataMixingSurrogateVectorEnv` N envs in one numpy call. Field aggregates, rewards and the
observation are formed from the predicted improvements exactly as the real env forms them.

:func:`fidelity` measures one-step predictions on held-out trajectories; :func:`schedule_return` gives the
return of a fixed mixture schedule, to check that the surrogate ranks strategies as the real env does.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mixing_gym.common import atomic_write_bytes, atomic_write_json, sha256_file
from mixing_gym.envs.mdp import (
    RELATIVE_BOUNDS,
    ScoreObjective,
    action_space,
    action_to_weights,
    check_action_mode,
    observation_names,
    observation_space,
    reward_name,
    score_objective,
)
from mixing_gym.evaluation import SOURCE_SCORE, TARGET_SCORE
from mixing_gym.trajectories import TrajectoryDataset, as_dataset

FORMAT_VERSION = 1
METADATA_FILE = "surrogate.json"
ARRAYS_FILE = "arrays.npz"
FIELDS = ("source", "target")
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
#: mixing-gym's benchmarks that belong to a field rather than to one domain (see mixing_gym.evaluation).
FIELD_BENCHMARKS = {"mg_source_continuation": "source", "mg_target_continuation": "target",
                    "mg_humaneval_mc": "target"}


@dataclass(frozen=True)
class BenchmarkRole:
    """What a benchmark measures, read from its name.

    Args:
        field: ``"source"`` or ``"target"``.
        kind: ``"bpb"`` (held-out bits per byte, lower is better) or ``"accuracy"``.
        domain: index of the domain it measures, or ``None`` for a field-level benchmark.
    """

    field: str
    kind: str
    domain: int | None

    @property
    def group(self) -> str:
        """Benchmarks of one group share the dynamics' coefficients."""
        return f"{self.field}/{self.kind}"


def benchmark_roles(benchmark_names: Sequence[str], domain_names: Sequence[str],
                    domain_fields: Sequence[str]) -> list[BenchmarkRole]:
    """The role of each of mixing-gym's benchmarks: ``mg_bpb_<domain>``, ``mg_mc_<domain>`` and the field tasks."""
    index = {name: i for i, name in enumerate(domain_names)}
    roles = []
    for name in benchmark_names:
        kind, _, domain = name.removeprefix("mg_").partition("_")
        if name.startswith("mg_") and kind in ("bpb", "mc") and domain in index:
            roles.append(BenchmarkRole(domain_fields[index[domain]], "bpb" if kind == "bpb" else "accuracy",
                                       index[domain]))
        elif name in FIELD_BENCHMARKS:
            roles.append(BenchmarkRole(FIELD_BENCHMARKS[name], "accuracy", None))
        else:
            raise ValueError(f"Benchmark {name!r} is not one of mixing-gym's tasks (mg_bpb_<domain>, mg_mc_<domain>, "
                             f"{sorted(FIELD_BENCHMARKS)}), so the surrogate cannot tell its field; record "
                             "trajectories without standard_tasks to fit a surrogate.")
    return roles


def _json_ready(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj))
    except TypeError as error:
        raise ValueError(f"The dataset's {what} must be JSON-serialisable to be saved with the surrogate "
                         f"({error}); record plain values (a preset name, not a ProxyPreset object).") from None


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
        metadata: what the model was fit on and how: ``domain_names``, ``domain_fields``,
            ``benchmark_names``, ``observation_names``, ``base_scores``, ``num_steps``, ``initial_weights``,
            ``aggregate``, ``groups``, the dataset's ``env_id``, ``env_kwargs``, ``action_mode``,
            ``temperature`` and a ``fit`` summary.
        coefficients: ``(G, P)`` polynomial coefficients per group (in ``metadata["groups"]`` order), the
            intercept first.
        residual_std: ``(B,)`` root-mean-square training residual of each benchmark's change (the scale
            of the optional step noise).
        feature_range: ``(2, len(FEATURES))`` lowest and highest value of each feature in the fitted data.
    """

    def __init__(self, metadata: dict[str, Any], coefficients: np.ndarray, residual_std: np.ndarray,
                 feature_range: np.ndarray):
        self.metadata = metadata
        self.domain_names: list[str] = list(metadata["domain_names"])
        self.domain_fields: list[str] = list(metadata["domain_fields"])
        self.benchmark_names: list[str] = list(metadata["benchmark_names"])
        self.observation_names: list[str] = list(metadata["observation_names"])
        self.base_scores: dict[str, float] = dict(metadata["base_scores"])
        self.num_steps = int(metadata["num_steps"])
        self.initial_weights = np.asarray(metadata["initial_weights"], dtype=np.float64)
        self.num_domains, self.num_benchmarks = len(self.domain_names), len(self.benchmark_names)

        roles = benchmark_roles(self.benchmark_names, self.domain_names, self.domain_fields)
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
        self.group_of_benchmark = np.array([groups.index(role.group) for role in roles])
        self._benchmark_coefficients = coefficients[self.group_of_benchmark]  # (B, P), gathered once

        # Index arrays that turn a batch of mixtures into per-benchmark features in a few numpy calls.
        k = self.num_domains
        field_of_domain = np.array([FIELDS.index(f) for f in self.domain_fields])
        self._field_onehot = np.eye(len(FIELDS))[field_of_domain]  # (K, 2)
        self._domains_per_field = np.maximum(self._field_onehot.sum(axis=0), 1.0)
        self._benchmark_field = np.array([FIELDS.index(role.field) for role in roles])
        # weights extended by each field's mean weight: a field-level benchmark reads its field's mean
        self._own_index = np.array([role.domain if role.domain is not None else k + FIELDS.index(role.field)
                                    for role in roles])
        same_group = self.group_of_benchmark[:, None] == self.group_of_benchmark[None, :]
        self._group_mean = (same_group / same_group.sum(axis=1, keepdims=True)).T  # x @ this: group means
        self._base = np.array([self.base_scores[name] for name in self.benchmark_names], dtype=np.float64)
        self._lower_is_better = np.array([role.kind == "bpb" for role in roles])

        aggregate = metadata["aggregate"]
        if aggregate not in ("bpb", "all"):
            raise ValueError(f"Unknown aggregate {aggregate!r} in the surrogate's metadata; use 'bpb' or 'all'.")
        members = np.zeros((self.num_benchmarks, len(FIELDS)))
        for b, role in enumerate(roles):
            if aggregate == "all" or role.kind == "bpb":
                members[b, FIELDS.index(role.field)] = 1.0
        # x @ this: (source, target) means, as mixing_gym.evaluation.Evaluator.aggregates forms them
        self._aggregate_matrix = members / np.maximum(members.sum(axis=0), 1.0)

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
        """``(N, 2)`` source and target scores: the mean improvement of each field's aggregated benchmarks
        (``aggregate="bpb"``: bits per byte only; ``"all"``: every benchmark)."""
        return improvements @ self._aggregate_matrix

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
        roles = benchmark_roles(dataset.benchmark_names, dataset.domain_names, dataset.domain_fields)
        groups = sorted({role.group for role in roles})
        metadata = {
            "format": FORMAT_VERSION,
            "env_id": dataset.env_id,
            "env_kwargs": _json_ready(dataset.env_kwargs, "env_kwargs"),
            "domain_names": list(dataset.domain_names),
            "domain_fields": list(dataset.domain_fields),
            "benchmark_names": list(dataset.benchmark_names),
            "observation_names": list(dataset.observation_names),
            "base_scores": {k: float(v) for k, v in dataset.base_scores.items()},
            "num_steps": int(dataset.num_steps),
            "initial_weights": np.asarray(dataset.episodes[0].observations[0][: len(dataset.domain_names)],
                                          dtype=np.float64).tolist(),
            "aggregate": dataset.env_kwargs.get("aggregate", "bpb"),
            "action_mode": dataset.action_mode,
            "temperature": float(dataset.temperature),
            "features": list(FEATURES),
            "groups": groups,
        }
        unlimited = np.array([np.full(len(FEATURES), -np.inf), np.full(len(FEATURES), np.inf)])
        untrained = cls(metadata, np.zeros((len(groups), NUM_TERMS)), np.zeros(len(roles)), unlimited)
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

        predicted = cls(metadata, coefficients, np.zeros(len(roles)), feature_range).predict_change(
            steps.improvements, steps.weights, steps.progress)
        metadata["fit"] = {"episodes": len(dataset.episodes), "transitions": len(steps.changes),
                           "ridge_alpha": alphas, "r2": _r2(steps.changes.ravel(), predicted.ravel())}
        residual_std = np.sqrt(np.mean((steps.changes - predicted) ** 2, axis=0))
        return cls(metadata, coefficients, residual_std, feature_range)

    def transitions(self, dataset: TrajectoryDataset) -> Transitions:
        """Every recorded step of ``dataset`` (which must have this model's domains and benchmarks)."""
        layout = {"domain_names": list(dataset.domain_names), "domain_fields": list(dataset.domain_fields),
                  "benchmark_names": list(dataset.benchmark_names),
                  "observation_names": list(dataset.observation_names), "num_steps": int(dataset.num_steps)}
        for attribute, value in layout.items():
            if value != getattr(self, attribute):
                raise ValueError(f"The trajectories' {attribute} {value} differ from the surrogate's "
                                 f"{getattr(self, attribute)}; use trajectories of the same env config.")
        expected = observation_names(self.domain_names, self.benchmark_names)
        if self.observation_names != expected:
            raise ValueError(f"The observation layout {self.observation_names} is not DataMixing-v0's {expected}.")
        k, b = self.num_domains, self.num_benchmarks
        before, after = [], []
        for number, episode in enumerate(dataset.episodes):
            observations = np.asarray(episode.observations, dtype=np.float64)
            if observations.ndim != 2 or observations.shape[1] != len(expected) or len(observations) < 2:
                raise ValueError(f"Episode {number} has observations of shape {observations.shape}; expected "
                                 f"(steps + 1, {len(expected)}) with at least one step.")
            before.append(observations[:-1])
            after.append(observations[1:])
        before, after = np.concatenate(before), np.concatenate(after)
        return Transitions(improvements=before[:, k:k + b], weights=after[:, :k], progress=before[:, -1],
                           changes=after[:, k:k + b] - before[:, k:k + b],
                           aggregate_changes=after[:, k + b:k + b + 2] - before[:, k + b:k + b + 2],
                           recorded_aggregates=after[:, k + b:k + b + 2], next_improvements=after[:, k:k + b])

    def check_aggregates(self, steps: Transitions) -> None:
        """Raise if the recorded field aggregates are not this model's means of the recorded improvements."""
        gap = np.max(np.abs(self.aggregates(steps.next_improvements) - steps.recorded_aggregates))
        if gap > AGGREGATE_TOLERANCE:
            raise ValueError(f"The recorded source/target scores differ by up to {gap:.2e} from the mean of the "
                             f"recorded improvements under aggregate={self.metadata['aggregate']!r}; record "
                             "env_kwargs['aggregate'] with the trajectories so the surrogate forms them alike.")

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


def _r2(real: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(real, predicted, force_finite=False))  # NaN, not a made-up 0 or 1, for constant data


def _spearman(real: np.ndarray, predicted: np.ndarray) -> float:
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


# ---------------------------------------------------------------------------------------------- episodes


class SurrogateEpisodes:
    """The state of N surrogate episodes, stepped together; both envs run on it, so a vector env of N
    steps exactly as N single envs.

    Args:
        model: the dynamics.
        num_envs: N.
        objective: ``J(source, target)``; the reward is its change.
        noise: step noise, in units of each benchmark's residual std (0 for the expected dynamics).
    """

    def __init__(self, model: SurrogateModel, num_envs: int, objective: ScoreObjective, noise: float):
        self.model = model
        self.num_envs = num_envs
        self.objective = objective
        self.noise_std = noise * model.residual_std
        k, b = model.num_domains, model.num_benchmarks
        self.improvements = np.zeros((num_envs, b))
        self.weights = np.tile(model.initial_weights, (num_envs, 1))
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.objective_values = np.zeros(num_envs)
        self.field_scores = np.zeros((num_envs, 2))  # source and target aggregates
        self._observation = np.zeros((num_envs, k + b + 3), dtype=np.float32)

    def reset(self, mask: np.ndarray | slice = slice(None)) -> None:
        """Return the envs of ``mask`` to the base model: initial mixture, improvements 0, progress 0."""
        self.improvements[mask] = 0.0
        self.weights[mask] = self.model.initial_weights
        self.steps[mask] = 0
        self.objective_values[mask] = 0.0
        self.field_scores[mask] = 0.0

    def step(self, weights: np.ndarray, normal: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Train every env one step on ``weights`` ``(N, K)``; ``normal`` ``(N, B)`` are standard normal draws
        for the step noise. Returns the rewards and whether each episode ended."""
        model = self.model
        change = model.predict_change(self.improvements, weights, self.steps / model.num_steps)
        if normal is not None:
            change += normal * self.noise_std
        improvements = self.improvements + change
        np.maximum(improvements, RELATIVE_BOUNDS[0], out=improvements)  # the ufuncs: np.clip costs more per call
        np.minimum(improvements, RELATIVE_BOUNDS[1], out=improvements)
        self.improvements = improvements
        self.weights = np.array(weights)  # a copy: reset() writes into it, and callers keep theirs
        self.steps = self.steps + 1
        self.field_scores = model.aggregates(self.improvements)
        objective = np.array([self.objective(s, t) for s, t in self.field_scores.tolist()], dtype=np.float64)
        rewards = objective - self.objective_values
        self.objective_values = objective
        return rewards, self.steps >= model.num_steps

    def observations(self) -> np.ndarray:
        """``(N, D)`` float32 observations in ``DataMixing-v0``'s layout."""
        k, b = self.model.num_domains, self.model.num_benchmarks
        out = self._observation
        out[:, :k] = self.weights
        out[:, k:k + b] = self.improvements  # already inside RELATIVE_BOUNDS, and so are their means
        out[:, k + b:k + b + 2] = self.field_scores
        out[:, -1] = self.steps / self.model.num_steps
        return out.copy()


class _SurrogateSpec:
    """Arguments and attributes both surrogate envs share (the ones agents read, as on ``DataMixing-v0``)."""

    def _setup(self, surrogate: SurrogateModel | str | Path | None, reward: str | ScoreObjective, reward_coef: float,
               action_mode: str, temperature: float, noise: float) -> ScoreObjective:
        check_action_mode(action_mode, temperature)
        objective = score_objective(reward, reward_coef)
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0 (a multiple of the residual std), got {noise}.")
        self.surrogate = resolve_surrogate(surrogate)
        self.reward_name = reward_name(reward)
        self.action_mode = action_mode
        self.temperature = temperature
        self.noise = noise
        model = self.surrogate
        self.domain_names = model.domain_names
        self.domain_fields = model.domain_fields
        self.num_domains = model.num_domains
        self.benchmark_names = model.benchmark_names
        self.observation_names = model.observation_names
        self.num_steps = model.num_steps
        self.base_scores = model.base_scores
        self.initial_weights = model.initial_weights
        return objective


class DataMixingSurrogateEnv(_SurrogateSpec, gym.Env):
    """``DataMixing-v0`` with learned dynamics: the same MDP, stepped in microseconds.

    ## Description

    A surrogate of :class:`mixing_gym.envs.DataMixingEnv` for fast agent development, hyperparameter
    searches and algorithm benchmarks. Instead of training and scoring a proxy language model, a step
    predicts every benchmark's improvement with a :class:`SurrogateModel` fit to recorded
    ``DataMixing-v0`` trajectories (``SurrogateModel.fit(dataset)``); domains, benchmarks, episode length
    and base scores are those of the recorded env config. Check a surrogate's fidelity with
    :func:`fidelity` before trusting what an agent learns on it.

    ## Action Space

    As ``DataMixing-v0``: ``Box(-1, 1, (K,), float32)`` logits mapped by ``softmax(action / temperature)``,
    or with ``action_mode="weights"`` ``Box(0, 1, (K,))`` normalised by its sum.

    ## Observation Space

    As ``DataMixing-v0``, a float32 ``Box`` of size K + B + 3 named by ``env.unwrapped.observation_names``:

    | index           | name                 | meaning                                            | range      |
    |-----------------|----------------------|----------------------------------------------------|------------|
    | 0 .. K-1        | ``weight/<domain>``  | the mixture trained on in the last step            | [0, 1]     |
    | K .. K+B-1      | ``score/<task>``     | each benchmark's predicted improvement             | [-1, 10]   |
    | K+B             | ``score/source``     | source-field aggregate improvement (``s``)         | [-1, 10]   |
    | K+B+1           | ``score/target``     | target-field aggregate improvement (``t``)         | [-1, 10]   |
    | K+B+2           | ``progress``         | share of the CPT token budget spent                | [0, 1]     |

    The aggregates are the mean predicted improvement of each field's bits-per-byte benchmarks (or of
    all its benchmarks, when the trajectories were recorded with ``aggregate="all"``), as in the real env.

    ## Rewards

    The change of ``J(s, t)`` since the previous step (J = 0 at reset), with the same objectives as
    ``DataMixing-v0``: ``"balanced"`` (default), ``"target"``, ``"source"``, ``"weighted"`` (with
    ``reward_coef``), ``"min"`` or a callable ``J(s, t) -> float``.

    ## Starting State

    The base model: the recorded initial mixture, improvements of 0, progress 0. With ``noise=0`` (the
    default) the dynamics are the model's expected step and do not depend on the seed; with
    ``noise > 0`` each step adds Gaussian noise of ``noise`` times each benchmark's residual std, drawn
    from ``np_random`` (same seed and actions, same episode).

    ## Episode End

    Terminates after the recorded ``num_steps``; no truncation. Stepping after the end raises ``RuntimeError``.

    ## Arguments

    ```python
    gym.make("DataMixingSurrogate-v0", surrogate=..., reward="balanced", reward_coef=0.5,
             action_mode="logits", temperature=0.25, noise=0.0, render_mode=None)
    gym.make_vec("DataMixingSurrogate-v0", num_envs=N, surrogate=..., ...)  # one numpy call per step
    ```

    - ``surrogate``: a :class:`SurrogateModel` or the folder it was saved to (``model.save(path)``).
    - ``reward``, ``reward_coef``, ``action_mode``, ``temperature``: as ``DataMixing-v0``.
    - ``noise``: step noise in units of the model's residual std (default 0: deterministic dynamics).
    - ``render_mode``: ``"ansi"`` (a text table) or ``None``.

    ``info`` holds ``mixture``, ``scores`` (raw scores implied by the predicted improvements, with
    ``source_score`` and ``target_score``), ``source_score``, ``target_score`` and ``objective``, so the
    loss-driven baselines run on it unchanged.

    ## Version History

    - v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 2}

    def __init__(
        self,
        surrogate: SurrogateModel | str | Path | None = None,
        reward: str | ScoreObjective = "balanced",
        reward_coef: float = 0.5,
        action_mode: str = "logits",
        temperature: float = 0.25,
        noise: float = 0.0,
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"Unknown render_mode {render_mode!r}; use one of {self.metadata['render_modes']}.")
        objective = self._setup(surrogate, reward, reward_coef, action_mode, temperature, noise)
        self.render_mode = render_mode
        self.observation_space = observation_space(self.num_domains, len(self.benchmark_names))
        self.action_space = action_space(self.num_domains, action_mode)
        self._episodes = SurrogateEpisodes(self.surrogate, 1, objective, noise)
        self._started = False

    def action_to_weights(self, action: np.ndarray) -> np.ndarray:
        """Validate an action and map it to mixture weights (see Action Space)."""
        return action_to_weights(action, self.action_space.shape, self.action_mode, self.temperature)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._episodes.reset()
        self._started = True
        info = {"scores": dict(self.base_scores), "mixture": self.initial_weights.copy()}
        return self._episodes.observations()[0], info

    def step(self, action):
        if not self._started:
            raise RuntimeError("Call reset() before step(): it starts the episode from the base model.")
        episodes = self._episodes
        if episodes.steps[0] >= self.num_steps:
            raise RuntimeError(f"The episode ended after {self.num_steps} steps (the CPT budget is spent); "
                               "call reset() to start a new one.")
        weights = self.action_to_weights(action)
        normal = self.np_random.standard_normal((1, self.surrogate.num_benchmarks)) if self.noise > 0 else None
        rewards, terminated = episodes.step(weights[None], normal)
        source, target = episodes.field_scores[0].tolist()
        scores = dict(zip(self.benchmark_names, self.surrogate.raw_scores(episodes.improvements[0]).tolist()))
        scores[SOURCE_SCORE], scores[TARGET_SCORE] = source, target
        info = {"mixture": weights, "scores": scores, SOURCE_SCORE: source, TARGET_SCORE: target,
                "objective": float(episodes.objective_values[0])}
        return episodes.observations()[0], float(rewards[0]), bool(terminated[0]), False, info

    def render(self):
        if self.render_mode != "ansi":
            return None
        episodes = self._episodes
        lines = [f"DataMixingSurrogate-v0  step {int(episodes.steps[0])}/{self.num_steps}  reward={self.reward_name}",
                 f"{'domain':24s} {'field':7s} {'weight':>7s}"]
        lines += [f"{n:24s} {f:7s} {w:7.3f}" for n, f, w in zip(self.domain_names, self.domain_fields, episodes.weights[0])]
        lines += [f"{name:24s} {value:+.4f}" for name, value in zip((SOURCE_SCORE, TARGET_SCORE), episodes.field_scores[0])]
        return "\n".join(lines)


class DataMixingSurrogateVectorEnv(_SurrogateSpec, VectorEnv):
    """N ``DataMixingSurrogate-v0`` episodes stepped in one numpy call (``gym.make_vec``'s vector entry point).

    Steps as N :class:`DataMixingSurrogateEnv` would, with next-step autoreset: the step after an
    episode ends returns that env's reset observation, reward 0 and ignores its action. ``reset(seed=s)``
    seeds env ``i`` with ``s + i`` (a list seeds each), as ``SyncVectorEnv`` does. ``infos`` hold arrays of
    ``mixture``, ``source_score``, ``target_score`` and ``objective`` with Gymnasium's ``_key`` masks (an
    env that was just reset reports only its mixture; there are no per-benchmark ``scores``).

    Args:
        num_envs: N.
        surrogate, reward, reward_coef, action_mode, temperature, noise: as :class:`DataMixingSurrogateEnv`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        surrogate: SurrogateModel | str | Path | None = None,
        reward: str | ScoreObjective = "balanced",
        reward_coef: float = 0.5,
        action_mode: str = "logits",
        temperature: float = 0.25,
        noise: float = 0.0,
    ):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}.")
        objective = self._setup(surrogate, reward, reward_coef, action_mode, temperature, noise)
        self.num_envs = int(num_envs)
        self.single_observation_space = observation_space(self.num_domains, len(self.benchmark_names))
        self.single_action_space = action_space(self.num_domains, action_mode)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._episodes = SurrogateEpisodes(self.surrogate, self.num_envs, objective, noise)
        self._generators: list[np.random.Generator] | None = None
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        super().reset(seed=seed if isinstance(seed, (int, np.integer)) else None)
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset got {len(seeds)} seeds for {self.num_envs} envs; pass one per env or an int.")
        if self._generators is None or seed is not None:
            self._generators = [seeding.np_random(s)[0] for s in seeds]
        self._episodes.reset()
        self._autoreset[:] = False
        return self._episodes.observations(), self._infos(np.zeros(self.num_envs, dtype=bool))

    def step(self, actions):
        if self._generators is None:
            raise RuntimeError("Call reset() before step(): it starts the episodes from the base model.")
        episodes = self._episodes
        weights = action_to_weights(actions, self.action_space.shape, self.action_mode, self.temperature)
        restarting = self._autoreset.copy()
        normal = None
        if self.noise > 0:
            normal = np.zeros((self.num_envs, self.surrogate.num_benchmarks))
            for i in np.flatnonzero(~restarting):  # each env draws from its own generator, as a single env does
                normal[i] = self._generators[i].standard_normal(self.surrogate.num_benchmarks)
        rewards, terminated = episodes.step(weights, normal)
        if restarting.any():
            episodes.reset(restarting)
            rewards[restarting] = 0.0
            terminated[restarting] = False
        self._autoreset = terminated
        return (episodes.observations(), rewards, terminated.copy(), np.zeros(self.num_envs, dtype=bool),
                self._infos(~restarting))

    def _infos(self, stepped: np.ndarray) -> dict[str, np.ndarray]:
        """Gymnasium's vector ``infos``: arrays with ``_key`` masks; an env that was reset reports only its mixture."""
        episodes = self._episodes
        infos: dict[str, np.ndarray] = {"mixture": episodes.weights.copy(), "_mixture": np.ones(self.num_envs, bool)}
        if stepped.any():
            for key, values in ((SOURCE_SCORE, episodes.field_scores[:, 0]), (TARGET_SCORE, episodes.field_scores[:, 1]),
                                ("objective", episodes.objective_values)):
                infos[key] = np.where(stepped, values, 0.0)
                infos[f"_{key}"] = stepped.copy()
        return infos


# ---------------------------------------------------------------------------------------------- evaluation


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
        return {"r2": _r2(real, estimate), "spearman": _spearman(real, estimate)}

    return {
        "transitions": len(steps.changes),
        "pooled": scores(steps.changes.ravel(), predicted.ravel()),
        "benchmarks": {name: scores(steps.changes[:, b], predicted[:, b]) for b, name in enumerate(model.benchmark_names)},
        SOURCE_SCORE: scores(steps.aggregate_changes[:, 0], predicted_aggregates[:, 0]),
        TARGET_SCORE: scores(steps.aggregate_changes[:, 1], predicted_aggregates[:, 1]),
    }


def schedule_return(surrogate: SurrogateModel | str | Path, schedule: np.ndarray | Sequence[Sequence[float]],
                    seeds: Sequence[int] = (0,), reward: str | ScoreObjective = "balanced", reward_coef: float = 0.5,
                    noise: float = 0.0) -> float:
    """Mean episode return, over ``seeds``, of a fixed mixture schedule on the surrogate.

    ``schedule`` is one mixture of K non-negative weights used at every step, or ``(num_steps, K)``, one
    per step. Compare the ranking of strategies with their returns on ``DataMixing-v0``.
    """
    model = resolve_surrogate(surrogate)
    plan = np.asarray(schedule, dtype=np.float64)
    if plan.ndim == 1:
        plan = np.tile(plan, (model.num_steps, 1))
    if plan.shape != (model.num_steps, model.num_domains):
        raise ValueError(f"The schedule has shape {plan.shape}; pass K={model.num_domains} weights or "
                         f"({model.num_steps}, {model.num_domains}), one mixture per step (domains {model.domain_names}).")
    env = DataMixingSurrogateVectorEnv(len(seeds), model, reward, reward_coef, action_mode="weights", noise=noise)
    env.reset(seed=list(seeds))
    returns = np.zeros(len(seeds))
    for weights in plan:
        _, rewards, *_ = env.step(np.tile(weights, (len(seeds), 1)))
        returns += rewards
    return float(returns.mean())
