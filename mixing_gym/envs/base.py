"""What every mixing env shares: its :class:`~mixing_gym.layout.MixingLayout`, the attributes read from it,
the reward objective and the text rendering."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mixing_gym.layout import MixingLayout, Scores
from mixing_gym.mdp import ScoreObjective, reward_name, score_objective

RENDER_MODES = ("ansi", "rgb_array")
#: How the text rendering names each benchmark kind's raw metric.
UNITS = {"lm": "bpb", "task": "bpb", "accuracy": "acc", "standard": "metric"}


def check_render_mode(render_mode: str | None, supported: Sequence[str]) -> None:
    if render_mode is not None and render_mode not in supported:
        raise ValueError(f"Unknown render_mode {render_mode!r}; use one of {list(supported)}.")


class MixingEnvBase:
    """The layout-backed attributes of the real envs (``DataMixing-v1``, v0), the surrogate envs and their vector envs.

    Subclasses call :meth:`_set_layout` in ``__init__``; everything below is read from ``self.layout``,
    so the env, its recorded trajectories and the agents that act on it agree by construction.
    """

    layout: MixingLayout

    def _set_layout(self, layout: MixingLayout, reward: str | ScoreObjective, reward_coef: float) -> None:
        self.layout = layout
        self._objective = score_objective(reward, reward_coef)
        self.reward_name = reward_name(reward)

    @property
    def domain_names(self) -> tuple[str, ...]:
        """The K domains, in action order."""
        return self.layout.domain_names

    @property
    def domain_fields(self) -> tuple[str, ...]:
        """``"source"`` or ``"target"`` for each domain."""
        return self.layout.domain_fields

    @property
    def num_domains(self) -> int:
        return self.layout.num_domains

    @property
    def benchmark_names(self) -> tuple[str, ...]:
        """The benchmarks scored after every step, in observation order."""
        return self.layout.benchmark_names

    @property
    def observation_names(self) -> tuple[str, ...]:
        """What each observation entry is."""
        return self.layout.observation_names

    @property
    def num_steps(self) -> int:
        return self.layout.num_steps

    @property
    def action_mode(self) -> str:
        return self.layout.action_mode

    @property
    def temperature(self) -> float:
        return self.layout.temperature

    @property
    def base_scores(self) -> dict[str, float]:
        """The base model's raw score of every benchmark, the reference of every improvement."""
        return dict(self.layout.base_scores)

    @property
    def initial_weights(self) -> np.ndarray:
        """The mixture of the reset observation: the base model's pretraining mixture."""
        return np.array(self.layout.initial_weights, dtype=np.float64)

    def action_to_weights(self, action: np.ndarray) -> np.ndarray:
        """Validate an action and map it to mixture weights (see Action Space)."""
        return self.layout.action_to_weights(action)

    def _render_table(self, title: str, weights: np.ndarray, scores: Scores) -> str:
        """The ``ansi`` rendering: the mixture per domain, then every benchmark against the base model."""
        base = self.layout.base_scores
        lines = [title, f"{'domain':24s} {'field':7s} {'weight':>7s}"]
        lines += [f"{n:24s} {f:7s} {w:7.3f}" for n, f, w in zip(self.domain_names, self.domain_fields, weights)]
        lines += ["", "score: bits per byte for language modelling (bpb, lower is better), accuracy for multiple",
                  "choice (acc, higher is better); improvement: relative change over the base model (higher is better)",
                  f"{'benchmark':34s} {'metric':6s} {'score':>8s} {'base':>8s} {'improvement':>11s}"]
        lines += [f"{b.name:34s} {UNITS[b.kind]:6s} {scores.raw[b.name]:8.4f} {base[b.name]:8.4f} "
                  f"{scores.improvements[b.name]:+11.4f}" for b in self.layout.benchmarks]
        lines += [f"{'source_score (field aggregate)':34s} {'':6s} {'':8s} {'':8s} {scores.source:+11.4f}",
                  f"{'target_score (field aggregate)':34s} {'':6s} {'':8s} {'':8s} {scores.target:+11.4f}"]
        return "\n".join(lines)
