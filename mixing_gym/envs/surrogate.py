"""``DataMixingSurrogate-v1`` (and v0): the real env's MDP with dynamics learned from recorded trajectories.

The dynamics are a :class:`mixing_gym.surrogate.SurrogateModel` (fit, saved, loaded and measured there);
this module steps it: :class:`DataMixingSurrogateEnv` is one env, :class:`DataMixingSurrogateVectorEnv` N
envs in one numpy call. Both read their spaces, action mapping and aggregates from the recorded
:class:`~mixing_gym.layout.MixingLayout`, so the observation, the field aggregates and the reward are
formed exactly as the real env forms them. :func:`schedule_return` gives the return of a fixed mixture
schedule, to check that the surrogate ranks strategies as the real env does; :func:`rollout_fidelity`
replays held-out episodes whole (multi-step error, and the error on differences between near-best
episodes). Needs no torch, no lm-eval.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mixing_gym.envs.base import MixingEnvBase, check_render_mode
from mixing_gym.kernels import disagreement
from mixing_gym.layout import Scores
from mixing_gym.mdp import (
    MAX_EPOCHS,
    RELATIVE_BOUNDS,
    SOURCE_SCORE,
    TARGET_SCORE,
    ScoreObjective,
    action_to_weights,
    check_action_mode,
    score_objective,
)
from mixing_gym.reference import reference_penalty, reference_surrogate_path
from mixing_gym.surrogate import SurrogateModel, r_squared, resolve_surrogate, spearman_rank
from mixing_gym.trajectories import TrajectoryDataset, as_dataset


class SurrogateEpisodes:
    """The state of N surrogate episodes, stepped together; both envs run on it, so a vector env of N
    steps exactly as N single envs.

    Args:
        model: the dynamics.
        num_envs: N.
        objective: ``J(source, target)``; the reward is its change.
        noise: step noise, in units of each benchmark's residual std (0 for the expected dynamics).
        penalty: MOPO's ``lambda``: each reward is lowered by ``lambda`` times the ensemble's disagreement on
            the step's field scores (the norm of their std over the members); 0 leaves the reward as it is.
        measure_uncertainty: step every ensemble member to measure that disagreement (``uncertainty``) even
            without a penalty; otherwise the first member alone is stepped, five times faster.
        vectorised_objective: ``objective`` takes arrays of source and target scores (the named objectives
            do); a custom one is called once per env.
    """

    def __init__(self, model: SurrogateModel, num_envs: int, objective: ScoreObjective, noise: float,
                 penalty: float = 0.0, measure_uncertainty: bool = False, vectorised_objective: bool = False):
        self.model = model
        self.num_envs = num_envs
        self.objective = objective
        self.vectorised_objective = vectorised_objective
        self.noise_std = noise * model.residual_std
        self.penalty = penalty
        self.measure_uncertainty = model.ensemble_size > 1 and (penalty > 0 or measure_uncertainty)
        self.num_steps = model.layout.num_steps
        self.initial_weights = np.array(model.layout.initial_weights, dtype=np.float64)
        k, b = model.num_domains, model.num_benchmarks
        self.improvements = np.zeros((num_envs, b))
        self.weights = np.tile(self.initial_weights, (num_envs, 1))
        self.epochs = np.zeros((num_envs, k))  # each domain's unique tokens trained on, in epochs
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.objective_values = np.zeros(num_envs)
        self.field_scores = np.zeros((num_envs, 2))  # source and target aggregates
        self.uncertainty = np.zeros(num_envs)  # the ensemble's disagreement on the last step
        self._observation = np.zeros((num_envs, len(model.layout.observation_names)), dtype=np.float32)

    def reset(self, mask: np.ndarray | slice = slice(None)) -> None:
        """Return the envs of ``mask`` to the base model: initial mixture, improvements 0, progress 0."""
        self.improvements[mask] = 0.0
        self.weights[mask] = self.initial_weights
        self.epochs[mask] = 0.0
        self.steps[mask] = 0
        self.objective_values[mask] = 0.0
        self.field_scores[mask] = 0.0
        self.uncertainty[mask] = 0.0

    def step(self, weights: np.ndarray, normal: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Train every env one step on ``weights`` ``(N, K)``; ``normal`` ``(N, B)`` are standard normal draws
        for the step noise. Returns the rewards and whether each episode ended."""
        model = self.model
        progress = self.steps / self.num_steps
        if self.measure_uncertainty:
            # the model fit on every episode predicts; the ensemble's spread is its uncertainty
            change, aggregates = model.change_and_spread(self.improvements, weights, progress, self.epochs)
            self.uncertainty = disagreement(aggregates)
        else:
            change = model.predict_change(self.improvements, weights, progress, self.epochs)
        if normal is not None:
            change += normal * self.noise_std
        improvements = change  # the kernel's fresh array, updated in place: a temporary less per step
        improvements += self.improvements
        np.maximum(improvements, RELATIVE_BOUNDS[0], out=improvements)  # the ufuncs: np.clip costs more per call
        np.minimum(improvements, RELATIVE_BOUNDS[1], out=improvements)
        self.improvements = improvements
        self.weights = np.array(weights)  # a copy: reset() writes into it, and callers keep theirs
        if self.model.layout.observe_epochs:
            self.epochs += model.epochs_added(self.weights)  # in place: observations and infos copy it
        self.steps = self.steps + 1
        self.field_scores = model.aggregates(self.improvements)
        if self.vectorised_objective:
            objective = np.asarray(self.objective(*self.field_scores.T), dtype=np.float64)
        else:
            objective = np.array([self.objective(s, t) for s, t in self.field_scores.tolist()], dtype=np.float64)
        rewards = objective - self.objective_values
        if self.penalty:
            rewards = rewards - self.penalty * self.uncertainty
        self.objective_values = objective
        return rewards, self.steps >= self.num_steps

    def observations(self) -> np.ndarray:
        """``(N, D)`` float32 observations in the recorded env's layout."""
        layout = self.model.layout
        out = self._observation
        out[:, layout.weight_slice] = self.weights
        out[:, layout.score_slice] = self.improvements  # already inside RELATIVE_BOUNDS, and so are their means
        out[:, layout.aggregate_slice] = self.field_scores
        out[:, layout.progress_index] = self.steps / self.num_steps
        if layout.observe_epochs:
            out[:, layout.epochs_slice] = np.minimum(self.epochs, MAX_EPOCHS)  # as the real env reports them
        return out.copy()


class _SurrogateSpec(MixingEnvBase):
    """Arguments both surrogate envs share: the model, the env's own action mapping, the reward and the noise."""

    def _setup(self, surrogate: SurrogateModel | str | Path | None, reward: str | ScoreObjective, reward_coef: float,
               action_mode: str, temperature: float, noise: float, penalty: float) -> ScoreObjective:
        check_action_mode(action_mode, temperature)
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0 (a multiple of the residual std), got {noise}.")
        if not (math.isfinite(penalty) and penalty >= 0):
            raise ValueError(f"penalty must be a finite number >= 0 (MOPO's lambda), got {penalty}.")
        self.surrogate = resolve_surrogate(surrogate)
        self._named_reward = isinstance(reward, str)  # the named objectives take arrays: one call for N envs
        if penalty > 0 and self.surrogate.ensemble_size < 2:
            raise ValueError("penalty > 0 needs an ensemble to measure its disagreement: fit the surrogate with "
                             "SurrogateModel.fit(trajectories, ensemble=5).")
        self.penalty = penalty
        layout = dataclasses.replace(self.surrogate.layout, action_mode=action_mode, temperature=temperature)
        self._set_layout(layout, reward, reward_coef)
        self.noise = noise
        return self._objective


class DataMixingSurrogateEnv(_SurrogateSpec, gym.Env):
    """``DataMixing-v1`` (or ``DataMixing-v0``) with learned dynamics: the same MDP, stepped in microseconds.

    ## Description

    A surrogate of :class:`mixing_gym.envs.DataMixingEnv` for fast agent development, hyperparameter
    searches and algorithm benchmarks. Instead of training and scoring a proxy language model, a step
    predicts every benchmark's improvement with a :class:`SurrogateModel` fit to recorded
    ``DataMixing-v1`` or ``DataMixing-v0`` trajectories (``SurrogateModel.fit(dataset)``); domains,
    benchmarks, episode length
    and base scores are those of the recorded env config. Check a surrogate's fidelity with
    :func:`fidelity` before trusting what an agent learns on it.

    ## Action Space

    As the real env's: ``Box(-1, 1, (K,), float32)`` logits mapped by ``softmax(action / temperature)``,
    or with ``action_mode="weights"`` ``Box(0, 1, (K,))`` normalised by its sum.

    ## Observation Space

    As the recorded env, a float32 ``Box`` of size K + B + 3 (2K + B + 3 for ``DataMixing-v1``
    trajectories) named by ``env.unwrapped.observation_names``:

    | index           | name                 | meaning                                                | range      |
    |-----------------|----------------------|--------------------------------------------------------|------------|
    | 0 .. K-1        | ``weight/<domain>``  | the mixture trained on in the last step                | [0, 1]     |
    | K .. K+B-1      | ``score/<task>``     | each benchmark's predicted improvement                 | [-1, 10]   |
    | K+B             | ``score/source``     | source-field aggregate improvement (``s``)             | [-1, 10]   |
    | K+B+1           | ``score/target``     | target-field aggregate improvement (``t``)             | [-1, 10]   |
    | K+B+2           | ``progress``         | share of the CPT token budget spent                    | [0, 1]     |
    | K+B+3 .. 2K+B+2 | ``epochs/<domain>``  | v1 only: the domain's unique tokens trained on, epochs | [0, 100]   |

    The aggregates are each field's mean predicted improvement over the benchmarks the recorded env
    aggregates (its bits per byte on v0, its task benchmarks on v1), as in the real env; epochs grow as
    the real env counts them: whole sequences split by the mixture, each adding what the trajectories show.

    ## Rewards

    The change of ``J(s, t)`` since the previous step (J = 0 at reset), with the same objectives as
    the real env: ``"balanced"`` (default), ``"target"``, ``"source"``, ``"weighted"`` (with
    ``reward_coef``), ``"min"`` or a callable ``J(s, t) -> float``. With ``penalty`` (MOPO's ``lambda``,
    for a surrogate fit as an ensemble) each reward is lowered by ``lambda`` times the ensemble's
    disagreement on the step (``info["uncertainty"]``), so that a policy is not paid for going where
    the trajectories do not reach; the rewards then no longer sum to the objective.

    ## Starting State

    The base model: the recorded initial mixture, improvements of 0, progress 0. With ``noise=0`` (the
    default) the dynamics are the model's expected step and do not depend on the seed; with
    ``noise > 0`` each step adds Gaussian noise of ``noise`` times each benchmark's residual std, drawn
    from ``np_random`` (same seed and actions, same episode).

    ## Episode End

    Terminates after the recorded ``num_steps``; no truncation. Stepping after the end raises ``RuntimeError``.

    ## Arguments

    ```python
    gym.make("DataMixingSurrogate-v1", surrogate=..., reward="balanced", reward_coef=0.5,
             action_mode="logits", temperature=0.25, noise=0.0, penalty=0.0, render_mode=None)
    gym.make_vec("DataMixingSurrogate-v1", num_envs=N, surrogate=..., ...)  # one numpy call per step
    gym.make_vec("DataMixingSurrogate-v1", num_envs=N, autoreset_mode="SameStep")  # as SB3 resets episodes
    gym.make("DataMixingSurrogate-v1", target_field="code")  # the code field's reference surrogate
    ```

    - ``surrogate``: a :class:`SurrogateModel` or the folder it was saved to (``model.save(path)``); v1 defaults
      to the reference surrogate of ``target_field``.
    - ``target_field`` (v1 to v6, not with ``surrogate``): ``"math"`` (default) or ``"code"``, the field whose
      reference surrogate to step (:class:`DataMixingSurrogateV1Env`, :class:`DataMixingSurrogateV2Env`,
      :class:`DataMixingSurrogateV3Env`, :class:`DataMixingSurrogateV4Env`, :class:`DataMixingSurrogateV5Env`,
      :class:`DataMixingSurrogateV6Env`).
    - ``reward``, ``reward_coef``, ``action_mode``, ``temperature``: as the real env's.
    - ``noise``: step noise in units of the model's residual std (default 0: deterministic dynamics).
    - ``penalty``: MOPO's uncertainty penalty ``lambda`` (default 0, on v2 to v6 the weight their reference
      surrogate's card records; needs ``SurrogateModel.fit(..., ensemble=E)`` with E >= 2).
    - ``render_mode``: ``"ansi"`` (a text table) or ``None``.

    ``info`` holds ``mixture``, ``scores`` (raw scores implied by the predicted improvements, with
    ``source_score`` and ``target_score``), ``source_score``, ``target_score``, ``objective``,
    ``uncertainty`` (0 for a single model) and, on v1 trajectories, ``epochs``, so the loss-driven
    baselines run on it unchanged.

    ## Version History

    - v0: initial version. Later, without changing v0 surrogates: ``DataMixing-v1`` trajectories (epochs in
      the observation, per-domain coefficients for task benchmarks), ensembles and ``penalty``.
    - v1: the same class, whose ``surrogate`` defaults to the reference surrogate shipped in the package
      (:mod:`mixing_gym.reference`: fit on the 128 committed ``DataMixing-v1`` ``small`` trajectories, with
      a data card), so that ``gym.make("DataMixingSurrogate-v1")`` needs no argument. Later, for both ids:
      the vector env's ``autoreset_mode="SameStep"`` (for Stable-Baselines3), and a step that evaluates the
      ensemble's other members only where the penalty (or the single env's ``info["uncertainty"]``) needs them;
      the step's loops compiled with numba (:mod:`mixing_gym.kernels`), the same dynamics to rounding; the
      domain features' linear terms as one BLAS product, and fewer temporaries per step (also to rounding).
      Later, v1 only: ``target_field="code"``, a second reference surrogate fit on 128 code-field ``small``
      trajectories (:class:`DataMixingSurrogateV1Env`; the math one stays the default, unchanged). Later, for all
      ids: a penalised step reads the other members' field aggregates only
      (:meth:`~mixing_gym.surrogate.SurrogateModel.change_and_spread`), the same dynamics and the same
      disagreement to rounding. Later, for all ids: the other members' polynomial terms only for the benchmarks
      the field aggregates read (7 of 37), the same dynamics and disagreement bit for bit.
    - v2: the same class on the second reference surrogates, fit on the reference trajectories and on real episodes
      of trained policies gathered in rounds of data aggregation, with ``penalty`` defaulting to the weight chosen on
      held-out policies (:class:`DataMixingSurrogateV2Env`); the benchmark protocol's version 2 trains on it.
    - v3: the same class on the third reference surrogates, v2's fit on one more round of real episodes (the
      policies protocol 2 trained on v2 and validated), with a penalty chosen on held-out policies trained with and
      without one (:class:`DataMixingSurrogateV3Env`); the benchmark protocol's version 3 trains on it. v2 unchanged.
    - v4: the same class on the fourth reference surrogates, v3's fit on one more round (the policies protocol 3
      trained on v3 and validated), with a penalty chosen on the protocol's own rounds only, learners trained under
      a penalty as the protocol's are (:class:`DataMixingSurrogateV4Env`); the benchmark protocol's version 4 trains
      on it. v2 and v3 unchanged.
    - v5: the same class on the fifth reference surrogates, v4's fit on one more round (the policies protocol 4
      trained on v4 and validated), its penalty chosen by v4's rule on all the protocol's rounds
      (:class:`DataMixingSurrogateV5Env`); the benchmark protocol's version 5 trains on it. v2 to v4 unchanged.
    - v6: the same class on the sixth reference surrogates, v5's fit on one more round (the policies protocol 5
      trained on v5 and validated), its penalty chosen by the same rule (:class:`DataMixingSurrogateV6Env`); the
      benchmark protocol's version 6 trains on it. v2 to v5 unchanged.
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
        penalty: float = 0.0,
        render_mode: str | None = None,
    ):
        check_render_mode(render_mode, self.metadata["render_modes"])
        objective = self._setup(surrogate, reward, reward_coef, action_mode, temperature, noise, penalty)
        self.render_mode = render_mode
        self.observation_space = self.layout.observation_space
        self.action_space = self.layout.action_space
        self._episodes = SurrogateEpisodes(self.surrogate, 1, objective, noise, penalty, measure_uncertainty=True,
                                           vectorised_objective=self._named_reward)
        self._base_scores = self.layout.scores(self.layout.base_scores).flat()  # every reset's: formed once
        self._started = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._episodes.reset()
        self._started = True
        info = {"scores": dict(self._base_scores), "mixture": self.initial_weights}
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
        scores = self._scores()
        info = {"mixture": weights, "scores": scores.flat(), SOURCE_SCORE: scores.source, TARGET_SCORE: scores.target,
                "objective": float(episodes.objective_values[0]), "uncertainty": float(episodes.uncertainty[0]),
                **({"epochs": episodes.epochs[0].copy()} if self.layout.observe_epochs else {})}
        return episodes.observations()[0], float(rewards[0]), bool(terminated[0]), False, info

    def _scores(self) -> Scores:
        """The current episode's scores: raw scores implied by the predicted improvements, and the aggregates."""
        episodes, names = self._episodes, self.benchmark_names
        source, target = episodes.field_scores[0].tolist()
        raw = dict(zip(names, self.surrogate.raw_scores(episodes.improvements[0]).tolist()))
        return Scores(raw, dict(zip(names, episodes.improvements[0].tolist())), source, target)

    def render(self):
        if self.render_mode != "ansi":
            return None
        name = self.spec.id if self.spec is not None else type(self).__name__  # v0 or v1, as gym.make named it
        return self._render_table(f"{name}  step {int(self._episodes.steps[0])}/{self.num_steps}  "
                                  f"reward={self.reward_name}", self._episodes.weights[0], self._scores())


class DataMixingSurrogateVectorEnv(_SurrogateSpec, VectorEnv):
    """N surrogate episodes (``DataMixingSurrogate-v1``, v0) stepped in one numpy call (``gym.make_vec``'s entry).

    Steps as N :class:`DataMixingSurrogateEnv` would, with Gymnasium's next-step autoreset by default: the
    step after an episode ends returns that env's reset observation, reward 0 and ignores its action. With
    ``autoreset_mode="SameStep"`` (what Stable-Baselines3's vector envs do) the step that ends an episode
    resets it at once: it returns the reset observation, with the last one in ``infos["final_obs"]`` and
    that step's infos in ``infos["final_info"]`` (masked by ``_final_obs`` and ``_final_info``).
    ``reset(seed=s)`` seeds env ``i`` with ``s + i`` (a list seeds each), as ``SyncVectorEnv`` does.
    ``infos`` hold arrays of ``mixture``, ``source_score``, ``target_score`` and ``objective`` with
    Gymnasium's ``_key`` masks (an env that was just reset reports only its mixture; there are no
    per-benchmark ``scores`` and, unless ``penalty > 0``, no ensemble disagreement: only the first member
    is stepped).

    Args:
        num_envs: N.
        surrogate: as :class:`DataMixingSurrogateEnv`.
        reward: as :class:`DataMixingSurrogateEnv`.
        reward_coef: as :class:`DataMixingSurrogateEnv`.
        action_mode: as :class:`DataMixingSurrogateEnv`.
        temperature: as :class:`DataMixingSurrogateEnv`.
        noise: as :class:`DataMixingSurrogateEnv`.
        penalty: as :class:`DataMixingSurrogateEnv`.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default) or ``AutoresetMode.SAME_STEP`` (or their values,
            ``"NextStep"`` and ``"SameStep"``).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}
    AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)

    def __init__(
        self,
        num_envs: int = 1,
        surrogate: SurrogateModel | str | Path | None = None,
        reward: str | ScoreObjective = "balanced",
        reward_coef: float = 0.5,
        action_mode: str = "logits",
        temperature: float = 0.25,
        noise: float = 0.0,
        penalty: float = 0.0,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ):
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}.")
        mode = next((mode for mode in self.AUTORESET_MODES if autoreset_mode in (mode, mode.value)), None)
        if mode is None:
            raise ValueError(f"autoreset_mode must be one of {[mode.value for mode in self.AUTORESET_MODES]}, "
                             f"got {autoreset_mode!r}.")
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        objective = self._setup(surrogate, reward, reward_coef, action_mode, temperature, noise, penalty)
        self.num_envs = int(num_envs)
        self.single_observation_space = self.layout.observation_space
        self.single_action_space = self.layout.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._episodes = SurrogateEpisodes(self.surrogate, self.num_envs, objective, noise, penalty,
                                           vectorised_objective=self._named_reward)
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
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP:
            final = {}
            if terminated.any():
                final = {"final_obs": episodes.observations(), "_final_obs": terminated.copy(),
                         "final_info": self._infos(terminated), "_final_info": terminated.copy()}
                episodes.reset(terminated)
            return episodes.observations(), rewards, terminated, truncated, {**self._infos(~terminated), **final}
        if restarting.any():
            episodes.reset(restarting)
            rewards[restarting] = 0.0
            terminated[restarting] = False
        self._autoreset = terminated
        return episodes.observations(), rewards, terminated.copy(), truncated, self._infos(~restarting)

    def _infos(self, stepped: np.ndarray) -> dict[str, np.ndarray]:
        """Gymnasium's vector ``infos``: arrays with ``_key`` masks; an env that was reset reports only its mixture."""
        episodes = self._episodes
        infos: dict[str, np.ndarray] = {"mixture": episodes.weights.copy(), "_mixture": np.ones(self.num_envs, bool)}
        if stepped.any():
            every = stepped.all()  # as most steps are: copies, which cost less than np.where
            for key, values in ((SOURCE_SCORE, episodes.field_scores[:, 0]),
                                (TARGET_SCORE, episodes.field_scores[:, 1]),
                                ("objective", episodes.objective_values)):
                infos[key] = values.copy() if every else np.where(stepped, values, 0.0)
                infos[f"_{key}"] = stepped.copy()
        return infos


def _reference_or(surrogate: SurrogateModel | str | Path | None, target_field: str | None,
                  env_id: str = "DataMixingSurrogate-v1") -> SurrogateModel | str | Path:
    """``surrogate``, or where it is None ``env_id``'s reference surrogate of ``target_field`` (math by default)."""
    if surrogate is not None and target_field is not None:
        raise ValueError("Pass surrogate= (your own model) or target_field= (the reference surrogate of that field), "
                         "not both: a surrogate's field is the one its trajectories were collected on.")
    if surrogate is not None:
        return surrogate
    return reference_surrogate_path(env_id, target_field or "math")


def _reference_penalty(surrogate: SurrogateModel | str | Path | None, target_field: str | None,
                       penalty: float | None, env_id: str) -> float:
    """``penalty``, or where it is None ``env_id``'s chosen weight (0 with a surrogate of yours)."""
    if penalty is not None:
        return penalty
    return 0.0 if surrogate is not None else reference_penalty(env_id, target_field or "math")


class DataMixingSurrogateV1Env(DataMixingSurrogateEnv):
    """``DataMixingSurrogate-v1``: :class:`DataMixingSurrogateEnv` on a reference surrogate shipped in the package
    unless given another.

    Args:
        surrogate: a :class:`SurrogateModel` or its folder; default: the reference surrogate of ``target_field``.
        target_field: ``"math"`` (the default) or ``"code"``: the field of the ``DataMixing-v1`` ``small``
            trajectories the reference surrogate was fit on (:mod:`mixing_gym.reference`). Not with ``surrogate``.
        **kwargs: as :class:`DataMixingSurrogateEnv`.
    """

    def __init__(self, surrogate: SurrogateModel | str | Path | None = None, target_field: str | None = None,
                 **kwargs: Any):
        super().__init__(_reference_or(surrogate, target_field), **kwargs)


class DataMixingSurrogateV1VectorEnv(DataMixingSurrogateVectorEnv):
    """N ``DataMixingSurrogate-v1`` episodes in one numpy call: :class:`DataMixingSurrogateVectorEnv` on a
    reference surrogate unless given another.

    Args:
        num_envs: N.
        surrogate: as :class:`DataMixingSurrogateV1Env`.
        target_field: as :class:`DataMixingSurrogateV1Env`.
        **kwargs: as :class:`DataMixingSurrogateVectorEnv`.
    """

    def __init__(self, num_envs: int = 1, surrogate: SurrogateModel | str | Path | None = None,
                 target_field: str | None = None, **kwargs: Any):
        super().__init__(num_envs, _reference_or(surrogate, target_field), **kwargs)


class DataMixingSurrogateV2Env(DataMixingSurrogateEnv):
    """``DataMixingSurrogate-v2``: :class:`DataMixingSurrogateEnv` on the second reference surrogates, pessimistic by
    default.

    Its surrogates are fit on the reference trajectories and on real episodes of policies trained on the surrogates
    of earlier rounds (data aggregation: data where learners go), and each step's reward is lowered by ``penalty``
    times the ensemble's disagreement, with the weight chosen on held-out real episodes of trained policies
    (:func:`mixing_gym.reference.reference_penalty`; ``experiments/surrogate_aggregation``). Its scores are the ones
    the benchmark protocol (version 2) ranks algorithms by.

    Args:
        surrogate: a :class:`SurrogateModel` or its folder; default: the v2 reference surrogate of ``target_field``.
        target_field: ``"math"`` (the default) or ``"code"``. Not with ``surrogate``.
        penalty: MOPO's ``lambda``; default: the reference surrogate's chosen weight (0 with ``surrogate``).
        **kwargs: as :class:`DataMixingSurrogateEnv`.
    """

    #: The env whose reference surrogates and penalty it steps by default.
    reference_id: ClassVar[str] = "DataMixingSurrogate-v2"

    def __init__(self, surrogate: SurrogateModel | str | Path | None = None, target_field: str | None = None,
                 penalty: float | None = None, **kwargs: Any):
        super().__init__(_reference_or(surrogate, target_field, self.reference_id),
                         penalty=_reference_penalty(surrogate, target_field, penalty, self.reference_id), **kwargs)


class DataMixingSurrogateV2VectorEnv(DataMixingSurrogateVectorEnv):
    """N ``DataMixingSurrogate-v2`` episodes in one numpy call: :class:`DataMixingSurrogateVectorEnv` on a v2
    reference surrogate and its penalty unless given others.

    Args:
        num_envs: N.
        surrogate: as :class:`DataMixingSurrogateV2Env`.
        target_field: as :class:`DataMixingSurrogateV2Env`.
        penalty: as :class:`DataMixingSurrogateV2Env`.
        **kwargs: as :class:`DataMixingSurrogateVectorEnv`.
    """

    reference_id: ClassVar[str] = "DataMixingSurrogate-v2"

    def __init__(self, num_envs: int = 1, surrogate: SurrogateModel | str | Path | None = None,
                 target_field: str | None = None, penalty: float | None = None, **kwargs: Any):
        super().__init__(num_envs, _reference_or(surrogate, target_field, self.reference_id),
                         penalty=_reference_penalty(surrogate, target_field, penalty, self.reference_id), **kwargs)


class DataMixingSurrogateV3Env(DataMixingSurrogateV2Env):
    """``DataMixingSurrogate-v3``: :class:`DataMixingSurrogateV2Env` on the third reference surrogates.

    v2's fit on one more round of data aggregation: the real episodes of the policies that the benchmark protocol's
    version 2 trained on v2 under its penalty and validated, so the data lies where the protocol's own learners go. Its
    penalty is chosen on held-out policies of two kinds, trained with and without a penalty
    (``experiments/surrogate_aggregation``). The benchmark protocol's version 3 trains on it.

    Args:
        surrogate: a :class:`SurrogateModel` or its folder; default: the v3 reference surrogate of ``target_field``.
        target_field: ``"math"`` (the default) or ``"code"``. Not with ``surrogate``.
        penalty: MOPO's ``lambda``; default: the reference surrogate's chosen weight (0 with ``surrogate``).
        **kwargs: as :class:`DataMixingSurrogateEnv`.
    """

    reference_id: ClassVar[str] = "DataMixingSurrogate-v3"


class DataMixingSurrogateV3VectorEnv(DataMixingSurrogateV2VectorEnv):
    """N ``DataMixingSurrogate-v3`` episodes in one numpy call: :class:`DataMixingSurrogateV2VectorEnv` on a v3
    reference surrogate and its penalty unless given others; its arguments are
    :class:`DataMixingSurrogateV2VectorEnv`'s."""

    reference_id: ClassVar[str] = "DataMixingSurrogate-v3"


class DataMixingSurrogateV4Env(DataMixingSurrogateV2Env):
    """``DataMixingSurrogate-v4``: :class:`DataMixingSurrogateV2Env` on the fourth reference surrogates.

    v3's fit on one more round of data aggregation: the real episodes of the policies that the benchmark protocol's
    version 3 trained on v3 under its penalty and validated. Its penalty is chosen on held-out policies of the
    protocol's own rounds (trained under v2's and v3's penalties), since those are the learners the protocol trains
    (``experiments/surrogate_aggregation``). The benchmark protocol's version 4 trains on it. Its arguments are
    :class:`DataMixingSurrogateV2Env`'s, ``surrogate`` defaulting to the v4 reference surrogate of ``target_field``.
    """

    reference_id: ClassVar[str] = "DataMixingSurrogate-v4"


class DataMixingSurrogateV4VectorEnv(DataMixingSurrogateV2VectorEnv):
    """N ``DataMixingSurrogate-v4`` episodes in one numpy call: :class:`DataMixingSurrogateV2VectorEnv` on a v4
    reference surrogate and its penalty unless given others; its arguments are
    :class:`DataMixingSurrogateV2VectorEnv`'s."""

    reference_id: ClassVar[str] = "DataMixingSurrogate-v4"


class DataMixingSurrogateV5Env(DataMixingSurrogateV2Env):
    """``DataMixingSurrogate-v5``: :class:`DataMixingSurrogateV2Env` on the fifth reference surrogates.

    v4's fit on one more round of data aggregation: the real episodes of the policies that the benchmark protocol's
    version 4 trained on v4 under its penalty and validated; its penalty is chosen, by v4's rule, on held-out policies
    of all the protocol's rounds (``experiments/surrogate_aggregation``). The benchmark protocol's version 5 trains on
    it. Its arguments are :class:`DataMixingSurrogateV2Env`'s, ``surrogate`` defaulting to the v5 reference surrogate
    of ``target_field``.
    """

    reference_id: ClassVar[str] = "DataMixingSurrogate-v5"


class DataMixingSurrogateV5VectorEnv(DataMixingSurrogateV2VectorEnv):
    """N ``DataMixingSurrogate-v5`` episodes in one numpy call: :class:`DataMixingSurrogateV2VectorEnv` on a v5
    reference surrogate and its penalty unless given others; its arguments are
    :class:`DataMixingSurrogateV2VectorEnv`'s."""

    reference_id: ClassVar[str] = "DataMixingSurrogate-v5"


class DataMixingSurrogateV6Env(DataMixingSurrogateV2Env):
    """``DataMixingSurrogate-v6``: :class:`DataMixingSurrogateV2Env` on the sixth reference surrogates.

    v5's fit on one more round of data aggregation: the real episodes of the policies that the benchmark protocol's
    version 5 trained on v5 under its penalty and validated; its penalty is chosen, by v4's rule, on held-out policies
    of all the protocol's rounds (``experiments/surrogate_aggregation``). The benchmark protocol's version 6 trains on
    it. Its arguments are :class:`DataMixingSurrogateV2Env`'s, ``surrogate`` defaulting to the v6 reference surrogate
    of ``target_field``.
    """

    reference_id: ClassVar[str] = "DataMixingSurrogate-v6"


class DataMixingSurrogateV6VectorEnv(DataMixingSurrogateV2VectorEnv):
    """N ``DataMixingSurrogate-v6`` episodes in one numpy call: :class:`DataMixingSurrogateV2VectorEnv` on a v6
    reference surrogate and its penalty unless given others; its arguments are
    :class:`DataMixingSurrogateV2VectorEnv`'s."""

    reference_id: ClassVar[str] = "DataMixingSurrogate-v6"


# ---------------------------------------------------------------------------------------------- evaluation


def schedule_return(surrogate: SurrogateModel | str | Path, schedule: np.ndarray | Sequence[Sequence[float]],
                    seeds: Sequence[int] = (0,), reward: str | ScoreObjective = "balanced", reward_coef: float = 0.5,
                    noise: float = 0.0) -> float:
    """Mean episode return, over ``seeds``, of a fixed mixture schedule on the surrogate.

    ``schedule`` is one mixture of K non-negative weights used at every step, or ``(num_steps, K)``, one
    per step. Compare the ranking of strategies with their returns on the real env (``DataMixing-v1``).
    """
    model = resolve_surrogate(surrogate)
    plan = np.asarray(schedule, dtype=np.float64)
    if plan.ndim == 1:
        plan = np.tile(plan, (model.layout.num_steps, 1))
    layout = model.layout
    if plan.shape != (layout.num_steps, layout.num_domains):
        raise ValueError(f"The schedule has shape {plan.shape}; pass K={layout.num_domains} weights or "
                         f"({layout.num_steps}, {layout.num_domains}), one mixture per step "
                         f"(domains {list(layout.domain_names)}).")
    env = DataMixingSurrogateVectorEnv(len(seeds), model, reward, reward_coef, action_mode="weights", noise=noise)
    env.reset(seed=list(seeds))
    returns = np.zeros(len(seeds))
    for weights in plan:
        _, rewards, *_ = env.step(np.tile(weights, (len(seeds), 1)))
        returns += rewards
    return float(returns.mean())


def rollout_fidelity(surrogate: SurrogateModel | str | Path, held_out: TrajectoryDataset | str | Path,
                     reward: str | ScoreObjective = "balanced", reward_coef: float = 0.5,
                     top_fraction: float = 0.25) -> dict[str, Any]:
    """How well ``surrogate`` plays whole held-out episodes: multi-step fidelity, where errors compound.

    Every held-out episode's recorded mixtures are replayed on the surrogate from the base model (no step
    noise), all episodes in one vector env. Returns ``{"episodes": n, "step_rmse": {"source_score",
    "target_score"}`` (RMSE over episodes and steps of the field aggregates), ``"final": {"rmse", "r2",
    "spearman"}`` (of the episodes' final objective, under ``reward``), and ``"near_best": {"episodes",
    "pairs", "difference_rmse", "order_agreement"}``: over every pair of the ``top_fraction`` best episodes
    (by their real objective), the RMSE of the predicted difference of their objectives against the real
    one, and the share of pairs the surrogate orders as the real env does: what an agent searching near
    the top relies on.
    """
    model = resolve_surrogate(surrogate)
    dataset = as_dataset(held_out)
    model.transitions(dataset)  # the same env config, well-formed episodes
    layout = model.layout
    if len(dataset.episodes) < 2:
        raise ValueError(f"rollout_fidelity compares episodes: it needs at least 2 held-out ones, got "
                         f"{len(dataset.episodes)}.")
    if len({len(episode.observations) for episode in dataset.episodes}) != 1:
        raise ValueError("rollout_fidelity needs held-out episodes of one length (whole episodes of the env); "
                         "drop the truncated ones.")
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must lie in (0, 1], got {top_fraction}.")
    observations = np.stack([np.asarray(episode.observations, dtype=np.float64) for episode in dataset.episodes])
    real_scores = observations[:, 1:, layout.aggregate_slice]  # (n, T, 2): after each step
    objective = score_objective(reward, reward_coef)
    episodes = SurrogateEpisodes(model, len(observations), objective, noise=0.0)
    predicted_scores = []
    for step in range(real_scores.shape[1]):
        episodes.step(observations[:, step + 1, layout.weight_slice], None)  # the mixture that step trained on
        predicted_scores.append(episodes.field_scores.copy())
    predicted_scores = np.stack(predicted_scores, axis=1)
    step_rmse = np.sqrt(np.mean((predicted_scores - real_scores) ** 2, axis=(0, 1)))

    real_final = np.array([objective(s, t) for s, t in real_scores[:, -1].tolist()])
    predicted_final = np.array([objective(s, t) for s, t in predicted_scores[:, -1].tolist()])
    top = np.argsort(real_final)[::-1][:max(2, math.ceil(top_fraction * len(real_final)))]
    first, second = np.triu_indices(len(top), k=1)
    real_gaps = real_final[top[first]] - real_final[top[second]]
    predicted_gaps = predicted_final[top[first]] - predicted_final[top[second]]
    return {
        "episodes": len(real_final),
        "step_rmse": {SOURCE_SCORE: float(step_rmse[0]), TARGET_SCORE: float(step_rmse[1])},
        "final": {"rmse": float(np.sqrt(np.mean((predicted_final - real_final) ** 2))),
                  "r2": r_squared(real_final, predicted_final), "spearman": spearman_rank(real_final, predicted_final)},
        "near_best": {"episodes": len(top), "pairs": len(real_gaps),
                      "difference_rmse": float(np.sqrt(np.mean((predicted_gaps - real_gaps) ** 2))),
                      "order_agreement": float(np.mean(np.sign(predicted_gaps) == np.sign(real_gaps)))},
    }
