"""A search baseline: black-box optimisation of the mixture schedule with a stated budget of real episodes.

What a practitioner with a budget of proxy runs would do without a regression model or a policy:
:class:`MixtureSearch` plays ``budget`` whole episodes, each on a fixed schedule proposed by Optuna
(TPE by default, CMA-ES as an option), keeps the schedule that scored best and plays it. Every trial
is a job of the episode runner (:mod:`agents.runner`), committed to a store as it ends, so an interrupted
search resumes where it stopped; :meth:`MixtureSearch.from_table` rebuilds a search from its recorded table
without playing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from agents.backends import Backend
from agents.base import MixtureAgent
from agents.runner import EpisodeJob, EpisodeRunner, EpisodeStore, differences, env_arguments
from mixing_gym.layout import MixingLayout
from mixing_gym.mdp import action_to_weights

SCHEDULES = ("static", "two_phase")
SAMPLERS = ("tpe", "cmaes")
#: ``balanced``: the final balanced score (``record()["balanced"]``, whatever the env's reward, so that the
#: search compares with agents trained for other rewards); ``return``: the env's own objective (its return).
OBJECTIVES = ("balanced", "return")
#: The settings a search ran under: columns of its table, and what a rerun checks before reusing stored trials.
SETTINGS = ("seed", "episode_seed", "schedule", "sampler", "objective", "num_steps", "batch")


def cross_entropy_method(score: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...], population: int,
                         elites: int, iterations: int, init_std: float, rng: np.random.Generator
                         ) -> tuple[np.ndarray, float]:
    """The cross-entropy method over unbounded parameters of ``shape``: each iteration draws ``population``
    candidates from a Gaussian (from mean 0 and ``init_std``), scores them, and refits the Gaussian to the ``elites``
    best; returns the best candidate scored and its score.

    Args:
        score: ``(population, *shape)`` candidates -> ``(population,)`` scores, higher better.
        shape: the shape of one candidate.
        population: candidates per iteration.
        elites: the best candidates the Gaussian is refit to.
        iterations: refits.
        init_std: the initial standard deviation of every parameter.
        rng: draws the candidates.
    """
    mean, std = np.zeros(shape), np.full(shape, init_std)
    best_score, best = -np.inf, mean
    for _ in range(iterations):
        candidates = mean + std * rng.standard_normal((population, *shape))
        scored = score(candidates)
        order = np.argsort(scored)[::-1]
        if scored[order[0]] > best_score:
            best_score, best = float(scored[order[0]]), candidates[order[0]]
        elite = candidates[order[:elites]]
        mean, std = elite.mean(axis=0), elite.std(axis=0) + 1e-3  # the floor keeps every parameter searchable
    return best, best_score


def schedule_step(schedule: np.ndarray, layout: MixingLayout, observation: np.ndarray) -> np.ndarray:
    """The row of a per-step ``schedule`` ``(num_steps, K)`` for the step the observation is at.

    Args:
        schedule: the weights of every step.
        layout: the env's layout (reads the step from the observation's ``progress`` entry).
        observation: the env's current observation.
    """
    return schedule[min(layout.step_index(observation), len(schedule) - 1)]


class FixedSchedule(MixtureAgent):
    """A given mixture at each step: what one search trial plays.

    Args:
        schedule: ``(num_steps, K)`` non-negative weights, one row per step (normalised when acting).
    """

    def __init__(self, schedule: np.ndarray):
        self.schedule = np.asarray(schedule, dtype=np.float64)

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return schedule_step(self.schedule, self._layout(), observation)


class MixtureSearch(MixtureAgent):
    """Black-box search over mixture schedules, one real episode per Optuna trial.

    :meth:`learn` plays ``budget`` episodes and keeps the best schedule, which the agent then plays.

    A mixture is K logits in [-1, 1] mapped by the env's own softmax, ``softmax(logits / temperature)``
    (:func:`mixing_gym.mdp.action_to_weights`), rather than K positive numbers normalised: the search box
    is then exactly the set of mixtures a logits-mode env can train on (weight ratios up to
    ``e^(2 / temperature)``), a step in a logit changes a weight by a factor, so small weights are as easy
    to tune as large ones, and the uniform mixture is the box's centre (all zeros). Each trial plays the
    same env seed (common random numbers): at proxy scale two mixtures differ by little more than training
    noise, so with a seed per trial the search would rank the seeds' luck, while on one seed every
    difference between trials comes from the mixtures. The price is that the best schedule is the best on
    that seed; evaluate it on other seeds (``mixing-gym evaluate``). The first trial is the uniform
    mixture, so on the search seed the result is never worse than uniform.

    Args:
        schedule: ``"static"`` (one mixture for the whole episode: K logits) or ``"two_phase"`` (a first
            mixture, a second one and the step that switches to it, in 1 .. num_steps - 1: 2K + 1 parameters).
        sampler: ``"tpe"`` (Optuna's multivariate TPE: models the parameters jointly; with Optuna's default
            its first 10 trials are the uniform one and random draws) or ``"cmaes"`` (Optuna's CMA-ES).
            TPE refits to all trials at every proposal, so a resumed TPE search uses every stored trial
            (its random draws then differ from an uninterrupted run's). CMA-ES keeps its state in Optuna's
            trial attributes, which the store does not carry: a resumed CMA-ES search restarts its search
            distribution, and the stored trials only compete for the best.
        objective: what a trial maximises, one of :data:`OBJECTIVES`.
        batch: trials proposed together, then played in parallel when :meth:`learn` has a backend (each
            proposal of a batch sees the scores of the earlier batches only; TPE then lies, as Optuna's
            ``constant_liar``, about the batch's running trials so that they spread out). A setting of the
            search, recorded with its trials: the backend and its workers do not change the trials.
    """

    def __init__(self, schedule: str = "static", sampler: str = "tpe", objective: str = "balanced", batch: int = 1):
        for name, value, known in (("schedule", schedule, SCHEDULES), ("sampler", sampler, SAMPLERS),
                                   ("objective", objective, OBJECTIVES)):
            if value not in known:
                raise ValueError(f"Unknown {name} {value!r}; use one of {known}.")
        self.schedule = schedule
        self.sampler = sampler
        self.objective = objective
        if batch < 1:
            raise ValueError(f"batch must be at least 1 trial, got {batch}.")
        self.batch = batch
        self.best_schedule: np.ndarray | None = None
        self.best_score: float | None = None
        self.table: pd.DataFrame | None = None
        self.study: optuna.Study | None = None
        self.domain_names: list[str] | None = None
        self.num_steps: int | None = None

    # ------------------------------------------------------------------------------ the search space

    @property
    def _phases(self) -> tuple[int, ...]:
        return (1,) if self.schedule == "static" else (1, 2)

    def _distributions(self, names: list[str], num_steps: int) -> dict[str, BaseDistribution]:
        distributions: dict[str, BaseDistribution] = {
            f"logit{phase}/{name}": FloatDistribution(-1.0, 1.0) for phase in self._phases for name in names}
        if self.schedule == "two_phase":
            distributions["switch"] = IntDistribution(1, num_steps - 1)
        return distributions

    def _uniform_params(self, names: list[str], num_steps: int) -> dict[str, Any]:
        params: dict[str, Any] = {key: 0.0 for key in self._distributions(names, num_steps) if key != "switch"}
        if self.schedule == "two_phase":
            params["switch"] = num_steps // 2  # both phases uniform: any switch gives the uniform schedule
        return params

    def _phase_weights(self, params: dict[str, Any], names: list[str], temperature: float) -> dict[int, np.ndarray]:
        return {phase: action_to_weights(np.array([params[f"logit{phase}/{name}"] for name in names]),
                                         (len(names),), "logits", temperature) for phase in self._phases}

    def _schedule_of(self, weights: dict[int, np.ndarray], params: dict[str, Any], num_steps: int) -> np.ndarray:
        if self.schedule == "static":
            return np.tile(weights[1], (num_steps, 1))
        steps = np.arange(num_steps)[:, None]
        return np.where(steps < params["switch"], weights[1], weights[2])

    def _columns(self, names: list[str], num_steps: int) -> list[str]:
        return ["trial", *SETTINGS, *self._distributions(names, num_steps),
                *(f"weight{phase}/{name}" for phase in self._phases for name in names), "score"]

    # ------------------------------------------------------------------------------ learning

    def learn(self, env: gym.Env, budget: int = 64, seed: int = 0, episode_seed: int | None = None,
              store: str | os.PathLike | None = None, progress: bool = True,
              backend: Backend | None = None) -> MixtureSearch:
        """Play ``budget`` episodes on schedules proposed by the sampler and keep the best.

        Args:
            env: the env to search on (``DataMixing-v1``, ``DataMixing-v0`` or ``DataMixingSurrogate-v0``, any space),
                made by ``gym.make``.
            budget: real episodes to play, one per trial (the first is the uniform mixture).
            seed: seeds the sampler.
            episode_seed: the ``env.reset`` seed every trial plays (common random numbers; default ``seed``).
            store: a folder the trials are recorded in (an :class:`~agents.runner.EpisodeStore`, ``trial<i>.json``
                holding the trial's settings and parameters), each as it ends; on a rerun the stored trials are
                told to the study again and only the missing ones are played (``None``: kept in memory).
            progress: show a progress bar over the trials (each is a whole CPT run).
            backend: play each batch's trials there in parallel, on envs made like ``env``
                (``gym.make(env.spec.id, **env.spec.kwargs)``); default: one after another on ``env``.

        Raises:
            ValueError: a store of trials played under other settings (the message names them).
        """
        if budget < 1:
            raise ValueError(f"budget must be at least 1 episode, got {budget}.")
        layout = MixingLayout.of(env)
        names, num_steps = list(layout.domain_names), layout.num_steps
        if self.schedule == "two_phase" and num_steps < 2:
            raise ValueError(f"schedule='two_phase' needs episodes of at least 2 steps; this env has {num_steps}.")
        episode_seed = seed if episode_seed is None else episode_seed
        settings = {"seed": seed, "episode_seed": episode_seed, "schedule": self.schedule, "sampler": self.sampler,
                    "objective": self.objective, "num_steps": num_steps, "batch": self.batch}
        distributions = self._distributions(names, num_steps)

        def trial_job(index: int, params: dict[str, Any]) -> EpisodeJob:
            schedule = self._schedule_of(self._phase_weights(params, names, layout.temperature), params, num_steps)
            return EpisodeJob(f"trial{index}", FixedSchedule(schedule), episode_seed,
                              metadata={"settings": settings, "params": params})

        # Optuna logs every trial at INFO; the progress bar reports the search instead.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = (optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=self.batch > 1)
                   if self.sampler == "tpe"
                   else optuna.samplers.CmaEsSampler(seed=seed))
        study = optuna.create_study(direction="maximize", sampler=sampler)
        trials = EpisodeStore(store)
        env_id, env_kwargs = env_arguments(env)
        with EpisodeRunner(env_id, env_kwargs, trials, backend, env, progress, total=budget,
                           desc="Mixture search trials", unit="trial") as runner:
            stored = {index: entry for index in range(budget)
                      if (entry := trials.load(f"trial{index}", runner.env_key)) is not None}
            changed = sorted({line for entry in stored.values()
                              for line in differences(entry["metadata"]["settings"], settings)})
            if changed:
                raise ValueError(f"The search store {store} was recorded under other settings: {'; '.join(changed)}. "
                                 "Pass another store, or remove this one to start over.")
            jobs = {index: trial_job(index, entry["metadata"]["params"]) for index, entry in stored.items()}
            runner.run(list(jobs.values()))  # plays nothing: the stored trials start the progress bar
            for job, record in zip(jobs.values(), trials.episodes(list(jobs.values()), runner.env_key)):
                study.add_trial(optuna.trial.create_trial(params=job.metadata["params"], distributions=distributions,
                                                          value=float(record[self.objective])))
            if 0 not in stored:
                study.enqueue_trial(self._uniform_params(names, num_steps))  # the uniform mixture comes first

            missing = [index for index in range(budget) if index not in stored]
            for start in range(0, len(missing), self.batch):
                batch = missing[start:start + self.batch]
                asked = [study.ask(distributions) for _ in batch]
                played = [trial_job(index, trial.params) for index, trial in zip(batch, asked)]
                runner.run(played)
                for trial, record in zip(asked, trials.episodes(played, runner.env_key)):  # in trial order
                    study.tell(trial, float(record[self.objective]))
                jobs.update(zip(batch, played))
                runner.bar.set_description(f"Mixture search trials (best {study.best_value:+.4f})", refresh=False)

        ordered = [jobs[index] for index in range(budget)]
        rows = []
        for index, (job, record) in enumerate(zip(ordered, trials.episodes(ordered, runner.env_key))):
            params = job.metadata["params"]
            weights = self._phase_weights(params, names, layout.temperature)
            rows.append({"trial": index, **settings, **params, **{f"weight{phase}/{name}": float(w) for phase, ws
                                                                   in weights.items() for name, w in zip(names, ws)},
                         "score": float(record[self.objective])})
        self.study = study
        return self._adopt(pd.DataFrame(rows, columns=self._columns(names, num_steps)), names, num_steps)

    @classmethod
    def from_table(cls, table: pd.DataFrame | str | os.PathLike, domain_names: Sequence[str]) -> MixtureSearch:
        """The search a recorded table holds, without playing: its best schedule, best score and table.

        The table is a learned search's :attr:`table` or its CSV (``docs/results/search_v1_small.csv``): one row
        per trial, with its number (``trial``), the search's settings (:data:`SETTINGS`), the trial's parameters
        (``logit<phase>/<domain>``, and ``switch`` with two phases), the mixtures they made
        (``weight<phase>/<domain>``) and its ``score``.

        Args:
            table: the table, or the path of its CSV.
            domain_names: the domains of the env the agent is to play (``MixingLayout.of(env).domain_names``).

        Raises:
            ValueError: a table of another domain space.
        """
        frame = table if isinstance(table, pd.DataFrame) else pd.read_csv(table)
        first = frame.iloc[0]
        agent = cls(first["schedule"], first["sampler"], first["objective"])
        recorded = [column.partition("/")[2] for column in frame.columns if column.startswith("weight1/")]
        if sorted(recorded) != sorted(domain_names):
            raise ValueError(f"The search table weighs domains {recorded}, not {list(domain_names)}: a search is tied "
                             "to its domain space; search this one anew.")
        return agent._adopt(frame, list(domain_names), int(first["num_steps"]))

    def _adopt(self, table: pd.DataFrame, names: list[str], num_steps: int) -> MixtureSearch:
        """Keep the best trial of ``table`` (the first of the best score, as Optuna's best trial) as the schedule."""
        best = table.loc[table["score"].idxmax()]
        weights = {phase: best[[f"weight{phase}/{name}" for name in names]].to_numpy(dtype=np.float64)
                   for phase in self._phases}
        self.best_schedule = self._schedule_of(weights, {"switch": best.get("switch")}, num_steps)
        self.best_score = float(best["score"])
        self.table = table
        self.domain_names = names
        self.num_steps = num_steps
        return self

    def runs_table(self) -> pd.DataFrame:
        """The trials as proxy runs on fixed mixtures, the table :meth:`agents.baselines.RegMix.fit` reads: a weight
        column per domain and the trial's score as ``objective`` (a static search's trials are such runs)."""
        if self.table is None or self.schedule != "static":
            raise RuntimeError("runs_table() reads the trials of a learned static search (schedule='static').")
        return self.table[[f"weight1/{name}" for name in self.domain_names] + ["score"]].rename(
            columns={"score": "objective", **{f"weight1/{name}": name for name in self.domain_names}})

    # ------------------------------------------------------------------------------ acting

    def reset(self, layout: MixingLayout) -> None:
        if self.best_schedule is None:
            raise RuntimeError("MixtureSearch plays the schedule it found: call learn(env, budget) first.")
        if list(layout.domain_names) != self.domain_names or layout.num_steps != self.num_steps:
            raise ValueError(f"MixtureSearch learned on domains {self.domain_names} over {self.num_steps} steps, "
                             f"not {list(layout.domain_names)} over {layout.num_steps}; learn again on this env.")
        super().reset(layout)

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return schedule_step(self.best_schedule, self._layout(), observation)
