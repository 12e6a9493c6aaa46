"""Score any policy on the real env: :func:`evaluate_policy` plays it and returns normalised scores with intervals.

A **policy** (:data:`Policy`) is whatever an algorithm produced: an :class:`~agents.base.Agent`, a
Stable-Baselines3 model (acting deterministically), or a plain callable ``observation -> action``
(``(observation, info) -> action`` where it requires two positional arguments). :func:`as_agent` turns each into
an :class:`~agents.base.Agent`, and names what it got where it is none of them.

    from agents.evaluation import evaluate_policy

    scores = evaluate_policy(model, field="math", seeds=(1, 2, 3, 4, 5), output="runs/eval/ppo")
    print(scores)            # mean ± t-interval and IQM [bootstrap CI] of the normalised scores
    scores.normalised        # one per seed: 0 = uniform, 100 = the search baseline's best
    evaluate_policy(policy, env_id="DataMixingSurrogate-v1")   # the same on the surrogate, in milliseconds

Each seed plays one episode (``env.reset(seed=seed)``) through the episode runner (:mod:`agents.runner`): on a
``backend`` in parallel, and into an :class:`~agents.runner.EpisodeStore` under ``output`` (``<name>__seed<s>.json``
in ``output/episodes``), so an interrupted evaluation resumes and a repeated one plays nothing. The final balanced
score of each episode is normalised by :func:`mixing_gym.get_normalized_score` (0: the uniform mixture, 100: the
search baseline's best real policy, on the ``small`` preset of the field: the reference scores exist for
``DataMixing-v1`` ``small`` only; pass ``normalize=False`` elsewhere, e.g. on ``micro``). Two summaries of the
seeds come back, both 95%:

- **mean ± Student's t interval**: the one to read with few seeds (under :data:`FEW_SEEDS`), where a bootstrap
  cannot see beyond the scores it resamples;
- **IQM with a stratified-bootstrap interval** (:mod:`agents.rl_statistics`, the rliable way; one task, so the
  seeds are resampled): the one RL papers report, robust to an outlier seed, meaningful from about five seeds.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from agents.backends import Backend
from agents.base import Agent, FunctionAgent, SB3Agent
from agents.harness import mean_ci
from agents.rl_statistics import interquartile_mean, stratified_bootstrap_ci
from agents.runner import JOB_KEY, EpisodeJob, EpisodeStore, run_episodes
from mixing_gym import DEFAULT_ENV_ID, REAL_ENV_IDS, get_normalized_score
from mixing_gym.env_config import episode_cache_key


class SB3Model(Protocol):
    """What :class:`~agents.base.SB3Agent` plays: a Stable-Baselines3 model, or anything with its two spaces and
    ``predict(observation, deterministic=True) -> (action, state)``."""

    action_space: gym.Space
    observation_space: gym.Space

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, Any]:
        ...


#: What an algorithm may hand back: an :class:`~agents.base.Agent`, a Stable-Baselines3 model (:class:`SB3Model`,
#: acting deterministically), or a callable ``observation -> action`` (``(observation, info) -> action`` where it
#: requires two positional arguments). Actions are in the env's action space: ``Box(-1, 1, (K,))`` logits.
Policy = Agent | SB3Model | Callable[[np.ndarray], np.ndarray] | Callable[[np.ndarray, dict], np.ndarray]

#: The seeds :func:`evaluate_policy` plays by default: those of the reference scores' uniform and best rows.
DEFAULT_SEEDS = (1, 2, 3, 4, 5)
#: Below this many seeds :class:`PolicyScores` leads with the mean and its t-interval (a bootstrap of 2 to 4 values
#: cannot reach beyond them); from it on with the IQM and its stratified-bootstrap interval.
FEW_SEEDS = 5
#: The env and preset whose reference scores normalise episodes of a surrogate (fit on ``small`` trajectories).
SURROGATE_REFERENCE = ("DataMixing-v1", "small")


class PolicyError(TypeError, ValueError):
    """A policy (or a factory's return value) that is none of the kinds of :data:`Policy`."""


class _ObservationOnly:
    """A callable ``observation -> action`` as ``FunctionAgent``'s ``(observation, info) -> action``."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def __call__(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self.fn(observation)


def _required_arguments(fn: Callable) -> int:
    """How many positional arguments ``fn`` requires (1 where its signature cannot be read: a builtin)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional and p.default is p.empty for p in parameters)


def _is_sb3_model(policy: Any) -> bool:
    return all(hasattr(policy, name) for name in ("predict", "action_space", "observation_space"))


def as_agent(policy: Policy, what: str = "The policy") -> Agent:
    """``policy`` as an :class:`~agents.base.Agent`: an agent as it is, an SB3 model in
    :class:`~agents.base.SB3Agent` (deterministic actions), a callable in :class:`~agents.base.FunctionAgent`.

    Args:
        policy: an agent, an SB3 model or a callable (see :data:`Policy`).
        what: how an error names it ("The policy", "Factory 'cem' returned ...").

    Raises:
        PolicyError: ``policy`` is none of these (a class, ``None``, an array, ...); the message says what it is.
    """
    if isinstance(policy, Agent):
        return policy
    if not isinstance(policy, type):
        if _is_sb3_model(policy):
            return SB3Agent(policy)
        required = _required_arguments(policy) if callable(policy) else 0
        if callable(policy) and required <= 2:
            return FunctionAgent(policy if required == 2 else _ObservationOnly(policy))
        if callable(policy):
            raise PolicyError(f"{what} requires {required} arguments: a factory (env, seed, budget), not a policy? "
                              "A policy is called with the observation (and the info); train one with the factory "
                              "first (agents.benchmark.make_training_env gives it its env).")
    if policy is None:
        kind = "None (a factory that forgot to return its policy?)"
    elif isinstance(policy, type):
        kind = f"the class {policy.__name__} (return an instance)"
    else:
        kind = f"a {type(policy).__module__}.{type(policy).__qualname__}"
    raise PolicyError(f"{what} is {kind}; a policy is an agents.base.Agent, a Stable-Baselines3 model or a callable "
                      "observation -> action (agents.evaluation.Policy).")


# ---------------------------------------------------------------------------------------------- the scores


@dataclass(frozen=True)
class PolicyScores:
    """What :func:`evaluate_policy` measured: a policy's episode per seed, its scores, their summaries.

    Args:
        env_id: the env played.
        preset: its proxy preset (``None`` on a surrogate).
        field: its target field.
        seeds: the env seeds, one episode each.
        balanced: the final balanced score of each episode, in ``seeds``' order.
        normalised: those scores normalised (``None`` with ``normalize=False``).
        iqm: the interquartile mean of :attr:`scores`.
        iqm_low: the lower end of its stratified-bootstrap 95% interval.
        iqm_high: its upper end.
        mean: the mean of :attr:`scores`.
        mean_half_width: the half-width of its 95% Student's t interval (NaN for one seed).
        episodes: each episode's record (:meth:`~agents.base.PlayedEpisode.record`), in ``seeds``' order.
    """

    env_id: str
    preset: str | None
    field: str
    seeds: tuple[int, ...]
    balanced: np.ndarray
    normalised: np.ndarray | None
    iqm: float
    iqm_low: float
    iqm_high: float
    mean: float
    mean_half_width: float
    episodes: list[dict[str, Any]] = dataclasses.field(repr=False)

    @property
    def scores(self) -> np.ndarray:
        """The scores summarised: :attr:`normalised`, or :attr:`balanced` without normalisation."""
        return self.balanced if self.normalised is None else self.normalised

    def __str__(self) -> str:
        scale, digits = ("normalised score", ".0f") if self.normalised is not None else ("balanced score", "+.4f")
        mean = f"mean {self.mean:{digits}}" + ("" if np.isnan(self.mean_half_width) else
                                               f" ± {self.mean_half_width:{digits.lstrip('+')}} (95% t-interval)")
        iqm = (f"IQM {self.iqm:{digits}} [{self.iqm_low:{digits}}, {self.iqm_high:{digits}}] "
               "(95% stratified bootstrap)")
        first, second = (mean, iqm) if len(self.seeds) < FEW_SEEDS else (iqm, mean)
        return f"{scale} over {len(self.seeds)} seed(s) of {self.env_id}: {first}; {second}"


def summarise_scores(values: Sequence[float]) -> dict[str, float]:
    """The IQM of ``values`` with its stratified-bootstrap 95% interval (one task: the values are resampled), and
    the mean with the half-width of its 95% t-interval: the summaries of :class:`PolicyScores`.

    Args:
        values: one score per seed.
    """
    array = np.asarray(values, dtype=np.float64)
    low, high = stratified_bootstrap_ci(array[:, None])
    mean, half = mean_ci(array)
    return {"iqm": float(interquartile_mean(array)), "iqm_low": low, "iqm_high": high, "mean": mean,
            "mean_half_width": half}


# ---------------------------------------------------------------------------------------------- evaluation


def _env_kwargs(env_id: str, field: str, env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    kwargs = dict(env_kwargs or {})
    if kwargs.setdefault("target_field", field) != field:
        raise ValueError(f"env_kwargs has target_field={kwargs['target_field']!r} and field={field!r}; give one.")
    if env_id.rpartition(":")[2] in REAL_ENV_IDS:
        kwargs.setdefault("preset", "small")
    return kwargs


def evaluate_policies(policies: Mapping[str, Policy | Sequence[Policy]], field: str = "math",
                      seeds: Sequence[int] = DEFAULT_SEEDS, env_kwargs: Mapping[str, Any] | None = None,
                      backend: Backend | None = None, output: str | Path | None = None, *,
                      env_id: str = DEFAULT_ENV_ID, normalize: bool = True,
                      progress: bool = True) -> dict[str, PolicyScores]:
    """:func:`evaluate_policy` of several policies, all their episodes played together (on ``backend`` at once).

    Args:
        policies: the policies by name (names become file names: letters, digits, ``_.-``). A list of policies
            instead of one plays its ``i``-th policy on ``seeds[i]``: the runs of one algorithm, each on its own
            env seed (how :func:`agents.benchmark.run_benchmark` validates).
        field: as :func:`evaluate_policy`.
        seeds: as :func:`evaluate_policy`.
        env_kwargs: as :func:`evaluate_policy`.
        backend: as :func:`evaluate_policy`.
        output: as :func:`evaluate_policy`.
        env_id: as :func:`evaluate_policy`.
        normalize: as :func:`evaluate_policy`.
        progress: as :func:`evaluate_policy`.
    """
    seeds = tuple(int(seed) for seed in seeds)
    if not policies or not seeds:
        raise ValueError("Nothing to evaluate: give at least one policy and one seed.")
    bad = [name for name in policies if not JOB_KEY.match(name)]
    if bad:
        raise ValueError(f"Policy names {bad} cannot name files; use letters, digits, '_', '.' and '-'.")
    kwargs = _env_kwargs(env_id, field, env_kwargs)
    preset = kwargs.get("preset")
    reference_env, reference_preset = ((env_id, preset) if env_id.rpartition(":")[2] in REAL_ENV_IDS
                                       else SURROGATE_REFERENCE)
    if normalize:  # before playing: an env without reference scores fails now, not after its episodes
        try:
            get_normalized_score(reference_env, 0.0, reference_preset, field)
        except KeyError as error:
            raise KeyError(f"{error.args[0]} Pass normalize=False for balanced scores alone.") from None
    jobs: dict[str, list[EpisodeJob]] = {}
    for name, policy in policies.items():
        per_seed = list(policy) if isinstance(policy, (list, tuple)) else [policy] * len(seeds)
        if len(per_seed) != len(seeds):
            raise ValueError(f"{name!r} has {len(per_seed)} policies for {len(seeds)} seeds; give one per seed.")
        agents = [as_agent(one, f"Policy {name!r}") for one in per_seed]
        # the keys and metadata of agents.harness.evaluate_agents: a comparison's episodes are found here too
        jobs[name] = [EpisodeJob(f"{name}__seed{seed}", agent, seed, metadata={"agent": name})
                      for agent, seed in zip(agents, seeds)]
    store = EpisodeStore(None if output is None else Path(output) / "episodes")
    every = [job for name_jobs in jobs.values() for job in name_jobs]
    run_episodes(every, env_id, kwargs, store, backend=backend, progress=progress)
    env_key = episode_cache_key(env_id, kwargs)
    results = {}
    for name, name_jobs in jobs.items():
        records = store.episodes(name_jobs, env_key)
        balanced = np.array([record["balanced"] for record in records], dtype=np.float64)
        normalised = np.asarray(get_normalized_score(reference_env, balanced, reference_preset, field),
                                dtype=np.float64) if normalize else None
        summary = summarise_scores(balanced if normalised is None else normalised)
        results[name] = PolicyScores(env_id, preset, field, seeds, balanced, normalised, episodes=records, **summary)
    return results


def evaluate_policy(policy: Policy, field: str = "math", seeds: Sequence[int] = DEFAULT_SEEDS,
                    env_kwargs: Mapping[str, Any] | None = None, backend: Backend | None = None,
                    output: str | Path | None = None, *, env_id: str = DEFAULT_ENV_ID, name: str = "policy",
                    normalize: bool = True, progress: bool = True) -> PolicyScores:
    """Play ``policy`` one episode per seed on the real env and return its normalised scores with intervals.

    Args:
        policy: an :class:`~agents.base.Agent`, an SB3 model or a callable ``observation -> action``
            (:data:`Policy`); it should act deterministically.
        field: the target field (``"math"``, ``"code"``): the env's ``target_field`` and the reference scores'.
        seeds: the env seeds, one episode each (default :data:`DEFAULT_SEEDS`, 1 to 5).
        env_kwargs: more ``gym.make(env_id, ...)`` arguments (default on a real env: ``preset="small"``, the
            preset of the reference scores).
        backend: play the episodes there in parallel (default: one after another here).
        output: record the episodes under ``output/episodes`` and resume from them (default: in memory only).
        env_id: the env (default ``"DataMixing-v1"``; ``"DataMixingSurrogate-v1"`` scores on the reference
            surrogate, normalised with the real env's ``small`` reference scores).
        name: the policy's name in the episode files (a new name for a changed policy).
        normalize: normalise the scores (``False``: balanced scores only, for presets without reference scores).
        progress: show a progress bar over the episodes.

    Raises:
        PolicyError: ``policy`` is not a policy.
        KeyError: ``normalize`` on an env and preset without reference scores (before anything plays).
    """
    return evaluate_policies({name: policy}, field, seeds, env_kwargs, backend, output, env_id=env_id,
                             normalize=normalize, progress=progress)[name]
