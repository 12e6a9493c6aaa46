"""Baselines: fixed heuristics and data-mixing methods from the literature, as :class:`~agents.base.Agent` s.

Each works on any domain space through the env's :class:`~mixing_gym.layout.MixingLayout` alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from agents.backends import Backend
from agents.base import Agent, MixtureAgent
from agents.regression import MixtureRegressor
from agents.runner import EpisodeJob, EpisodeRunner, EpisodeStore, env_arguments
from mixing_gym.layout import MixingLayout


class RandomAgent(Agent):
    """Uniformly random actions: the reference point any learned policy must beat.

    Args:
        seed: seed of the action sampler, drawn from across episodes (so that their mean covers many
            action sequences, not one replayed on every env seed).
    """

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, info: dict) -> np.ndarray:
        space = self._layout().action_space
        return self.rng.uniform(space.low, space.high).astype(np.float32)


class FixedMixture(MixtureAgent):
    """The same mixture at every step.

    Args:
        weights: K non-negative weights in the env's domain order (normalised when acting).
    """

    def __init__(self, weights: Sequence[float] | np.ndarray):
        self.weights = np.asarray(weights, dtype=np.float64)

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self.weights


class FixedRatio(MixtureAgent):
    """A fixed share of target-field tokens, uniform within each field: the manual heuristic of CPT
    practice (replaying a share of general data to limit forgetting), e.g. Ibrahim et al., 2024, "Simple
    and Scalable Strategies to Continually Pre-train Large Language Models".

    Args:
        target_share: the share of target-field tokens, in [0, 1].
    """

    def __init__(self, target_share: float = 0.5):
        self.target_share = target_share

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self._layout().field_mixture(self.target_share)


class Uniform(MixtureAgent):
    """Every domain the same weight, the usual default mixture (e.g. the uniform baseline of Xie et al., 2023,
    "DoReMi: Optimizing Data Mixtures Speeds Up Language Model Pretraining")."""

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return np.ones(self._layout().num_domains)


class SourceOnly(FixedRatio):
    """Keep training on the source field only (uniform over its domains): no forgetting, no adaptation.
    The lower reference of Yang et al., 2025, "Data Mixing Agent: Learning to Re-weight Domains for
    Continual Pre-training"."""

    def __init__(self):
        super().__init__(target_share=0.0)


class TargetOnly(FixedRatio):
    """Train on the target field only (uniform over its domains): plain continual pre-training, which
    forgets most (Gururangan et al., 2020, "Don't Stop Pretraining: Adapt Language Models to Domains and Tasks")."""

    def __init__(self):
        super().__init__(target_share=1.0)


class LinearSchedule(MixtureAgent):
    """The target share moves linearly from ``start_share`` at the first step to ``end_share`` at the last,
    uniform within each field: a curriculum from source-heavy to target-heavy, as the hand-made schedules
    compared in Yang et al., 2025, "Data Mixing Agent: Learning to Re-weight Domains for Continual Pre-training".

    Args:
        start_share: target share of the first step.
        end_share: target share of the last step.
    """

    def __init__(self, start_share: float = 0.1, end_share: float = 0.9):
        self.start_share = start_share
        self.end_share = end_share

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        layout = self._layout()
        fraction = layout.step_index(observation) / max(layout.num_steps - 1, 1)
        return layout.field_mixture(self.start_share + (self.end_share - self.start_share) * min(fraction, 1.0))


class RegMix(MixtureAgent):
    """RegMix (Liu et al., 2024, "RegMix: Data Mixture as Regression for Language Model Pre-training").

    :meth:`learn` runs proxy episodes, each on one fixed mixture drawn from a Dirichlet distribution,
    records the objective each reaches (``info["objective"]``, the env's reward objective), fits a
    :class:`~agents.regression.MixtureRegressor` from mixture to objective, then simulates
    ``num_candidates`` random mixtures and keeps the average of the ``top_k`` best predicted ones, as the
    paper does. The agent then trains on that mixture at every step.

    Args:
        regressor: ``"gbm"`` (``HistGradientBoostingRegressor``, the stand-in for the paper's LightGBM),
            ``"ridge"`` (ridge on linear and pairwise-product features) or ``"auto"`` (gbm from 64 runs on).
        num_candidates: simulated mixtures ranked by the regressor (the paper: 1M).
        top_k: best predicted mixtures averaged into the final one (the paper: 100).
        concentration: range of the Dirichlet concentration, drawn log-uniformly per run, so that runs
            cover both peaked and flat mixtures (the paper varies it around the token distribution).
    """

    def __init__(self, regressor: str = "auto", num_candidates: int = 100_000, top_k: int = 100,
                 concentration: tuple[float, float] = (0.1, 5.0)):
        self.regressor = MixtureRegressor(regressor)
        self.num_candidates = num_candidates
        self.top_k = top_k
        self.concentration = concentration
        self.table: pd.DataFrame | None = None
        self.best_mixture: np.ndarray | None = None
        self.domain_names: list[str] | None = None

    def _sample_mixtures(self, rng: np.random.Generator, size: int, k: int) -> np.ndarray:
        low, high = np.log(self.concentration)
        alphas = np.exp(rng.uniform(low, high, (size, 1))) * np.ones(k)
        draws = rng.gamma(alphas)  # normalised gamma draws are Dirichlet draws, vectorised over rows
        return draws / draws.sum(axis=1, keepdims=True)

    def learn(self, env: gym.Env, num_runs: int = 32, seed: int = 0, max_steps: int | None = None,
              store: str | os.PathLike | None = None, progress: bool = True, backend: Backend | None = None) -> RegMix:
        """Run ``num_runs`` proxy episodes on random fixed mixtures, fit the regressor, pick the mixture.

        Args:
            env: the env to run proxies on (``DataMixing-v1`` or ``DataMixing-v0``, any domain space), made by
                ``gym.make``.
            num_runs: proxy episodes (the table's rows).
            seed: seeds the mixtures and the episodes.
            max_steps: stop each proxy episode after this many steps (default: the whole episode).
            store: a folder the runs are recorded in (an :class:`~agents.runner.EpisodeStore`, ``run<i>.json``),
                each as it finishes, so that an interrupted ``learn`` resumes and a rerun with more runs plays only
                the new ones (``None``: kept in memory).
            progress: show a progress bar over the proxy runs (each is a whole CPT run).
            backend: run the proxies there in parallel, on envs made like ``env`` (the same runs as without it);
                default: one after another on ``env``.
        """
        names = list(MixingLayout.of(env).domain_names)
        rng = np.random.default_rng(seed)
        mixtures = self._sample_mixtures(rng, num_runs, len(names))
        jobs = [EpisodeJob(f"run{run}", FixedMixture(mixture), seed + run, max_steps)
                for run, mixture in enumerate(mixtures)]
        runs = EpisodeStore(store)
        env_id, env_kwargs = env_arguments(env)
        with EpisodeRunner(env_id, env_kwargs, runs, backend, env, progress, desc="RegMix proxy runs",
                           unit="run") as runner:
            runner.run(jobs)
        return self.fit(self.runs_table(runs.episodes(jobs, runner.env_key)), names, rng)

    @classmethod
    def from_runs(cls, table: pd.DataFrame, domain_names: list[str], seed: int = 0, **settings: Any) -> RegMix:
        """RegMix fit on the runs that ``learn(env, len(table), seed)`` recorded (a committed table of them), picking
        the mixture ``learn`` picked: the candidates are drawn after the runs' mixtures, as ``learn`` draws them.

        Args:
            table: one row per run, as :meth:`runs_table` builds it.
            domain_names: the env's domains, in order.
            seed: the seed ``learn`` ran with.
            settings: :class:`RegMix`'s arguments.
        """
        regmix = cls(**settings)
        rng = np.random.default_rng(seed)
        regmix._sample_mixtures(rng, len(table), len(domain_names))
        return regmix.fit(table, domain_names, rng)

    @staticmethod
    def runs_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """The table :meth:`fit` reads, from proxy runs' episode records (:meth:`~agents.base.PlayedEpisode.record`,
        each on one fixed mixture): a weight column per domain and the run's ``objective``, a row per run.

        Args:
            records: the runs' records, all of one domain space.
        """
        return pd.DataFrame([{**dict(zip(record["domain_names"], record["steps"][-1]["mixture"])),
                              "objective": record["objective"]} for record in records])

    def fit(self, table: pd.DataFrame, domain_names: list[str], rng: np.random.Generator) -> RegMix:
        """Fit the regressor on recorded runs and pick the mixture (what :meth:`learn` does after its runs).

        Args:
            table: one row per proxy run: a weight column per domain (named by ``domain_names``) and the run's
                ``objective``; runs recorded by other means (another method's episodes) serve as well.
            domain_names: the env's domains, in order.
            rng: draws the simulated candidate mixtures.
        """
        self.table = table
        self.regressor.fit(self.table, domain_names, "objective")
        candidates = self._sample_mixtures(rng, self.num_candidates, len(domain_names))
        best = np.argsort(self.regressor.predict(candidates))[::-1][: self.top_k]
        self.best_mixture = candidates[best].mean(axis=0)
        self.domain_names = list(domain_names)
        return self

    def reset(self, layout: MixingLayout) -> None:
        if self.best_mixture is None:
            raise RuntimeError("RegMix acts on the mixture it learned: call learn(env, num_runs) first.")
        if list(layout.domain_names) != self.domain_names:
            raise ValueError(f"RegMix learned on domains {self.domain_names}, not {list(layout.domain_names)}; "
                             "learn again on this env.")
        super().reset(layout)

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self.best_mixture


class OnlineDataMixing(MixtureAgent):
    """Online Data Mixing (Albalak et al., 2023, "Efficient Online Data Mixing For Language Model
    Pre-Training"): an EXP3 multi-armed bandit whose arms are the domains, re-weighted at every step.

    The reward of a domain is its loss, as in the paper (a high loss means much left to learn there):
    here each domain's held-out bits per byte, ``info["scores"]["mg_bpb_<domain>"]``, after the last
    step. Its estimate follows the paper's moving average, ``R_i <- a R_i + (1 - a) r_i``; the env
    reports every domain's loss at every step, so the paper's importance-weighted ``r_i / pi_i`` (for
    the one domain a mini-batch came from) is replaced by its expectation ``r_i``. The mixture is
    ``pi = (1 - gamma) softmax(eta R) + gamma / K``.

    Args:
        learning_rate: ``eta``. The paper ties it to the exploration rate, ``eps_{t-1} <= 1/K``, over
            thousands of updates; an episode here has ``num_steps`` updates, where that would leave the
            mixture almost uniform, so the default is 1 (per bit per byte). ``None`` restores the paper's.
        exploration: ``gamma``, the share of the mixture spread uniformly. ``None``: the paper's
            schedule ``K * min(1/K, sqrt(ln K / (K t)))`` (uniform until ``t >= K ln K``).
        smoothing: ``a``, the moving-average factor of the reward estimates (the paper: 0.9).
    """

    def __init__(self, learning_rate: float | None = 1.0, exploration: float | None = 0.1, smoothing: float = 0.9):
        self.learning_rate = learning_rate
        self.exploration = exploration
        self.smoothing = smoothing

    def reset(self, layout: MixingLayout) -> None:
        super().reset(layout)
        self.estimates = np.zeros(layout.num_domains)
        self.updates = 0

    def _epsilon(self, t: int) -> float:
        k = self._layout().num_domains
        return min(1.0 / k, np.sqrt(np.log(k) / (k * t))) if t > 0 else 1.0 / k

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        layout = self._layout()
        k = layout.num_domains
        if layout.step_index(observation) > 0:  # at reset the scores are the base model's: nothing learned yet
            reward = layout.domain_scores(info["scores"])
            self.estimates = self.smoothing * self.estimates + (1.0 - self.smoothing) * reward
            self.updates += 1
        eta = self.learning_rate if self.learning_rate is not None else self._epsilon(self.updates - 1)
        gamma = self.exploration if self.exploration is not None else k * self._epsilon(self.updates)
        logits = eta * self.estimates
        exploit = np.exp(logits - logits.max())
        return (1.0 - gamma) * exploit / exploit.sum() + gamma / k


class DoReMi(MixtureAgent):
    """DoReMi (Xie et al., 2023, "DoReMi: Optimizing Data Mixtures Speeds Up Language Model Pretraining"):
    multiplicative-weights updates driven by each domain's excess loss over a reference model.

    The reference model is the env's base checkpoint: ``excess_i = max(bpb_i - base_bpb_i, 0)`` with the
    held-out bits per byte of ``info["scores"]`` and ``layout.base_scores`` (the paper clips per token;
    only per-domain losses are observed here). Each step, ``alpha <- normalize(alpha * exp(eta * excess))``
    then ``alpha <- (1 - c) alpha + c / K``, from uniform. In CPT the excess is the forgetting of each
    domain, so DoReMi here shifts tokens back to the domains being forgotten.

    Args:
        eta: the step size (the paper: 1).
        smoothing: ``c``, the weight of the uniform distribution mixed in (the paper: 1e-3).
    """

    def __init__(self, eta: float = 1.0, smoothing: float = 1e-3):
        self.eta = eta
        self.smoothing = smoothing

    def reset(self, layout: MixingLayout) -> None:
        super().reset(layout)
        self.base_bpb = layout.domain_scores(layout.base_scores)
        self.alpha = np.full(layout.num_domains, 1.0 / layout.num_domains)

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        excess = np.maximum(self._layout().domain_scores(info["scores"]) - self.base_bpb, 0.0)
        alpha = self.alpha * np.exp(self.eta * excess)
        self.alpha = (1.0 - self.smoothing) * alpha / alpha.sum() + self.smoothing / alpha.size
        return self.alpha
