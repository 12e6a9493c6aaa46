"""A search baseline: black-box optimisation of the mixture schedule with a stated budget of real episodes.

What a practitioner with a budget of proxy runs would do without a regression model or a policy:
:class:`MixtureSearch` plays ``budget`` whole episodes, each on a fixed schedule proposed by Optuna
(TPE by default, CMA-ES as an option), keeps the schedule that scored best and plays it. Every trial
is one row of a CSV table, so an interrupted search resumes where it stopped.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from tqdm.auto import tqdm

from agents.backends import Backend, env_arguments, play_on_worker
from agents.base import MixtureAgent, play_episode
from mixing_gym.layout import MixingLayout
from mixing_gym.mdp import action_to_weights

SCHEDULES = ("static", "two_phase")
SAMPLERS = ("tpe", "cmaes")
#: ``balanced``: the final balanced score (``record()["balanced"]``, whatever the env's reward, so that the
#: search compares with agents trained for other rewards); ``return``: the env's own objective (its return).
OBJECTIVES = ("balanced", "return")
#: The table's columns that state the settings it was written under; a rerun checks them before reusing rows.
SETTINGS = ("seed", "episode_seed", "schedule", "sampler", "objective", "num_steps", "batch")


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
            TPE refits to all trials at every proposal, so a resumed TPE search uses every reused row
            (its random draws then differ from an uninterrupted run's). CMA-ES keeps its state in Optuna's
            trial attributes, which the table does not carry: a resumed CMA-ES search restarts its search
            distribution, and the reused rows only compete for the best.
        objective: what a trial maximises, one of :data:`OBJECTIVES`.
        batch: trials proposed together, then played in parallel when :meth:`learn` has a backend (each
            proposal of a batch sees the scores of the earlier batches only; TPE then lies, as Optuna's
            ``constant_liar``, about the batch's running trials so that they spread out). A setting of the
            search, recorded in its table: the backend and its workers do not change the trials.
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

    # ------------------------------------------------------------------------------ the table

    def _read_table(self, path: Path, columns: list[str], settings: dict[str, Any]) -> pd.DataFrame:
        """The rows of an earlier search with the same settings; a table from other settings is an error."""
        frame = pd.read_csv(path)
        if "batch" not in frame.columns:  # a table written before batches existed: one trial at a time
            frame.insert(frame.columns.get_loc("num_steps") + 1, "batch", 1)
        problems = []
        if list(frame.columns) != columns:
            problems.append(f"columns {list(frame.columns)}, expected {columns} (another domain space or schedule)")
        else:
            problems += [f"{key} {sorted(set(frame[key].tolist()))}, here {value!r}"
                         for key, value in settings.items() if not frame[key].eq(value).all()]
            if frame["trial"].tolist() != list(range(len(frame))):
                problems.append(f"trials numbered {frame['trial'].tolist()}, expected 0 .. {len(frame) - 1}")
        if problems:
            raise ValueError(f"The search table {path} was written under other settings: {'; '.join(problems)}. "
                             "Pass another table_path, or remove this one to start over.")
        return frame

    # ------------------------------------------------------------------------------ learning

    def learn(self, env: gym.Env, budget: int = 64, seed: int = 0, episode_seed: int | None = None,
              table_path: str | Path | None = None, progress: bool = True,
              backend: Backend | None = None) -> MixtureSearch:
        """Play ``budget`` episodes on schedules proposed by the sampler and keep the best.

        Args:
            env: the env to search on (``DataMixing-v1``, ``DataMixing-v0`` or ``DataMixingSurrogate-v0``, any space).
            budget: real episodes to play, one per trial (the first is the uniform mixture).
            seed: seeds the sampler.
            episode_seed: the ``env.reset`` seed every trial plays (common random numbers; default ``seed``).
            table_path: a CSV with one row per finished trial, appended (and flushed) as each trial ends; on a
                rerun its rows are added back to the study and only the missing trials are played.
            progress: show a progress bar over the trials (each is a whole CPT run).
            backend: play each batch's trials there in parallel, on envs made like ``env``
                (``gym.make(env.spec.id, **env.spec.kwargs)``); default: one after another on ``env``.
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
        columns = self._columns(names, num_steps)
        path = Path(table_path) if table_path is not None else None
        rows = (self._read_table(path, columns, settings).iloc[:budget].to_dict("records")
                if path is not None and path.exists() else [])
        # Rows go on in the file's own columns: a table from before the batch column goes on without it.
        file_columns = list(pd.read_csv(path, nrows=0).columns) if rows else columns

        # Optuna logs every trial at INFO; the progress bar reports the search instead.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = (optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=self.batch > 1)
                   if self.sampler == "tpe"
                   else optuna.samplers.CmaEsSampler(seed=seed))
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for row in rows:
            params = {key: (int(row[key]) if key == "switch" else float(row[key])) for key in distributions}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                      value=float(row["score"])))
        if not rows:
            study.enqueue_trial(self._uniform_params(names, num_steps))

        with (tqdm(total=budget, initial=len(rows), desc="Mixture search trials", unit="trial",
                   disable=not progress) as bar,
              contextlib.nullcontext() if backend is None else backend.executor() as pool):
            while len(rows) < budget:
                trials = [study.ask(distributions) for _ in range(min(self.batch, budget - len(rows)))]
                weights = [self._phase_weights(trial.params, names, layout.temperature) for trial in trials]
                schedules = [self._schedule_of(w, trial.params, num_steps) for trial, w in zip(trials, weights)]
                if pool is None:
                    records = [play_episode(FixedSchedule(schedule), env, seed=episode_seed).record()
                               for schedule in schedules]
                else:
                    env_id, env_kwargs = env_arguments(env)
                    futures = [pool.submit(play_on_worker, FixedSchedule(schedule), env_id, env_kwargs, episode_seed)
                               for schedule in schedules]
                    records = [future.result() for future in futures]
                scores = [float(record[self.objective]) for record in records]
                for trial, phases, score in zip(trials, weights, scores):  # in trial order, whatever finished first
                    study.tell(trial, score)
                    row = {"trial": trial.number, **settings, **trial.params,
                           **{f"weight{phase}/{name}": w for phase, ws in phases.items() for name, w in zip(names, ws)},
                           "score": score}
                    if path is not None:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        # One row appended per trial, so a search killed mid-episode loses only the batch in play.
                        pd.DataFrame([row], columns=file_columns).to_csv(path, mode="a", header=not path.exists(),
                                                                         index=False)
                    rows.append(row)
                bar.set_postfix(best=f"{study.best_value:+.4f}", refresh=False)
                bar.update(len(trials))

        best = study.best_trial
        self.best_schedule = self._schedule_of(self._phase_weights(best.params, names, layout.temperature),
                                               best.params, num_steps)
        self.best_score = float(best.value)
        self.table = pd.DataFrame(rows, columns=columns)
        self.study = study
        self.domain_names = names
        self.num_steps = num_steps
        return self

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
