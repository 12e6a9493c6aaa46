"""``DataMixing-v0``: one episode is one continual pre-training run of a real proxy language model."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from mixing_gym.descriptors import with_base_loss
from mixing_gym.domains import DomainSpace, target_field_space
from mixing_gym.engine import ProxyRun, prepare
from mixing_gym.env_config import EnvConfig, env_config
from mixing_gym.envs.base import RENDER_MODES, MixingEnvBase, check_render_mode
from mixing_gym.layout import MixingLayout, Scores
from mixing_gym.mdp import MAX_EPOCHS, RELATIVE_BOUNDS, SOURCE_SCORE, TARGET_SCORE
from mixing_gym.models import env_preset
from mixing_gym.prepare import PreparedData


class DataMixingEnv(MixingEnvBase, gym.Env):
    """Learning to re-weight pre-training domains during continual pre-training (CPT).

    ## Description

    The environment of the Data Mixing Agent (Yang et al., 2025, arXiv 2507.15640). A proxy language
    model pretrained on the *source field* (general text) continues pre-training on a mixture of
    source-field and *target-field* domains (math, or code). At each step the agent chooses the
    mixture; the environment trains the proxy on ``tokens_per_step`` tokens drawn by those weights,
    scores it through lm-eval on held-out benchmarks of both fields, and rewards the change of an
    objective that balances target gains against source forgetting. Everything is real: text from
    installed sources, a ``transformers`` Llama proxy, an AdamW run whose schedule spans the episode.

    ## Action Space

    ``Box(-1, 1, (K,), float32)`` with K the number of domains (``env.unwrapped.num_domains``):
    logits mapped to the simplex by ``softmax(action / temperature)``; the default temperature 0.25
    lets a weight range over a factor e^8 ~ 3000. With ``action_mode="weights"`` the action is
    ``Box(0, 1, (K,))`` and is normalised by its sum (all-zero is an error).

    ## Observation Space

    A float32 ``Box`` of size K + B + 3 (B benchmarks), named by ``env.unwrapped.observation_names``:

    | index           | name                 | meaning                                            | range      |
    |-----------------|----------------------|----------------------------------------------------|------------|
    | 0 .. K-1        | ``weight/<domain>``  | the mixture trained on in the last step            | [0, 1]     |
    | K .. K+B-1      | ``score/<task>``     | each benchmark's improvement over the base model   | [-1, 10]   |
    | K+B             | ``score/source``     | source-field aggregate improvement (``s``)         | [-1, 10]   |
    | K+B+1           | ``score/target``     | target-field aggregate improvement (``t``)         | [-1, 10]   |
    | K+B+2           | ``progress``         | share of the CPT token budget spent                | [0, 1]     |

    A benchmark's improvement is its relative change over the base model, positive when better:
    ``(base - bpb) / base`` for bits-per-byte, ``(acc - base) / base`` for accuracy (clipped to
    [-1, 10]). A field's aggregate is the mean improvement of its language-modelling benchmarks
    (``aggregate="bpb"``, default) or of all its benchmarks (``aggregate="all"``).

    ## Rewards

    With ``s`` and ``t`` the source and target aggregates after the step, the reward is the
    change of an objective ``J(s, t)`` since the previous step (J = 0 at reset), so the return of an
    episode is J at its end. ``reward`` selects J:

    - ``"balanced"`` (default): ``(s + t) / 2``: target gains count as much as forgetting;
    - ``"target"``: ``t``; ``"source"``: ``s``;
    - ``"weighted"``: ``c * t + (1 - c) * s`` with ``c = reward_coef``;
    - ``"min"``: ``min(s, t)``;
    - a callable ``J(s, t) -> float``.

    ## Starting State

    ``reset(seed=...)`` restores the cached base checkpoint, starts a fresh AdamW optimizer and a
    warmup + cosine schedule spanning ``num_steps * tokens_per_step`` tokens, and seeds the run's own
    generators (numpy and torch) from ``np_random``; the process's global RNGs are left alone. The first
    observation holds the base model's pretraining mixture (uniform over the source field), relative scores
    of 0 and progress 0.

    ## Episode End

    Terminates after ``num_steps`` steps, when the CPT token budget is spent; there is no truncation
    (wrap it in ``TimeLimit`` for shorter episodes). Stepping after the end raises ``RuntimeError``.

    ## Arguments

    ```python
    gym.make("DataMixing-v0", preset="small", target_field="math", num_steps=None, tokens_per_step=None,
             reward="balanced", reward_coef=0.5, action_mode="logits", temperature=0.25,
             benchmarks="bpb", aggregate="bpb", standard_tasks=(), model=None, space=None, cache_dir=None,
             data_config=None, auto_prepare=True, torch_threads=None, precision="auto", compile=False,
             device="cpu", render_mode=None, target_epochs=None, observe_epochs=False, eval_batch_size=64)
    ```

    The arguments make a frozen :class:`~mixing_gym.env_config.EnvConfig` (``env.unwrapped.config``), which can
    also be passed whole (``DataMixingEnv(config)``); an unknown argument is an error naming the closest one.

    - ``preset``: proxy size ``"micro"`` (tests), ``"small"`` (default, CPU), ``"paper-50m"`` (GPU).
    - ``target_field``: ``"math"`` or ``"code"`` (the built-in domain spaces).
    - ``num_steps``, ``tokens_per_step``: re-weighting steps and tokens between them (preset defaults).
    - ``reward``, ``reward_coef``: see Rewards.
    - ``action_mode``, ``temperature``: see Action Space.
    - ``benchmarks``: ``"bpb"`` (default: held-out bits-per-byte of every domain) or ``"all"`` (adds the
      multiple-choice accuracy tasks to the observation; about 2.5x the scoring time).
    - ``aggregate``: which benchmarks make the source and target aggregates: ``"bpb"`` (default,
      held-out language modelling, which resolves mixture effects at proxy scale) or ``"all"``.
    - ``standard_tasks``: extra lm-eval tasks by name (:class:`mixing_gym.evaluation.StandardTask`).
    - ``model``: a local Hugging Face model directory used as the proxy instead of the preset's.
    - ``space``: a custom domain space (``DomainSpace``, config dict or YAML), overriding ``target_field``.
    - ``cache_dir``, ``data_config``, ``auto_prepare``: where and how data is prepared; with
      ``auto_prepare=False`` a missing cache raises an error naming the ``mixing-gym prepare`` command.
    - ``torch_threads``: set the process's torch threads (``torch.set_num_threads``) when the env is made;
      default ``None`` leaves them alone, since they are the process's and not the env's. The project's thread
      policy is one thread per env process (on busy or shared cores, threads spin-waiting on each other made a
      ``micro`` step 4.9 s instead of 0.64 s): ``mixing-gym`` and the worker processes set it where they start;
      pass ``torch_threads=1`` in your own script to follow it (``benchmarks/thread_policy.py`` measures both).
    - ``precision``, ``device``: training and scoring precision (``"auto"``: bf16 where the hardware computes
      it natively, ``"bf16"``, ``"fp32"``) and device.
    - ``compile``: train through ``torch.compile`` with plain attention (about 1.2-1.5x faster training
      on CPU with two threads, after a one-time compilation of 20-40 s per process).
    - ``render_mode``: ``"ansi"`` (a text table) or ``"rgb_array"`` (a matplotlib picture).
    - ``target_epochs``: finite target data: the target field keeps ``cpt_tokens / target_epochs`` unique
      training tokens, shared by its domains, so target-only training repeats them that many times
      (``None``, v0's default: every prepared token). ``observe_epochs`` appends ``epochs/<domain>``
      (each domain's unique tokens trained on so far, in epochs) to the observation and ``info["epochs"]``.
      ``DataMixing-v1`` turns both on.
    - ``eval_batch_size``: lm-eval's batch size when scoring. lm-eval pads each batch to its longest
      request, so prompts of uneven length score faster in smaller batches (``DataMixing-v1``: 16); the
      batch also moves bf16 scores in their fourth decimal, which is why v0 keeps 64.

    ## Version History

    - v0: initial version. Since then: ``render()`` labels its metrics; the arguments are an ``EnvConfig`` and
      unknown ones name the closest valid one; the env no longer sets the process's torch threads unless
      ``torch_threads`` is given, nor reseeds the global torch RNG at ``reset`` (it never drew from it).
      Observations, rewards and ``info`` are unchanged (``tests/test_v0_reproduction.py`` replays a recorded
      episode exactly).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 2}

    #: The env id whose defaults :class:`~mixing_gym.env_config.EnvConfig` applies (v1's class overrides it).
    env_id: ClassVar[str] = "DataMixing-v0"

    def __init__(self, config: EnvConfig | None = None, **kwargs: Any):
        if config is not None and kwargs:
            raise TypeError(f"{self.env_id}: pass either an EnvConfig or keyword arguments, not both.")
        self.config = config or env_config(self.env_id, kwargs)
        config = self.config
        check_render_mode(config.render_mode, self.metadata["render_modes"])
        if config.torch_threads is not None:  # asked for: the process's setting, so only when given
            torch.set_num_threads(config.torch_threads)

        proxy = env_preset(config)
        target_tokens = None if config.target_epochs is None else int(proxy.cpt_tokens / config.target_epochs)
        self.run = ProxyRun(self.space_of(config.target_field) if config.space is None else config.space, proxy,
                            config.cache_dir, config.data_config, config.auto_prepare, config.precision,
                            accuracy=config.benchmarks == "all", aggregate=config.aggregate,
                            standard_tasks=tuple(config.standard_tasks), compile=config.compile,
                            device=config.device, eval_batch_size=config.eval_batch_size, target_tokens=target_tokens)
        self.space = self.run.space
        benchmarks, base_scores = self.run.evaluator.benchmarks, dict(self.run.base_scores)
        self._set_layout(MixingLayout(tuple(self.space.names), tuple(self.space.fields), benchmarks, base_scores,
                                      self.run.preset.num_steps, config.action_mode, config.temperature,
                                      config.aggregate, tuple(self.space.field_mixture(0.0).tolist()),
                                      config.observe_epochs,
                                      with_base_loss(self.run.data.descriptors, benchmarks, base_scores)),
                         config.reward, config.reward_coef)
        self.render_mode = config.render_mode
        self.observation_space = self.layout.observation_space
        self.action_space = self.layout.action_space
        #: Wall-clock seconds of the last step by phase; kept out of ``info`` so seeded runs compare equal.
        self.last_step_timings: dict[str, float] = {}
        self._history: list[tuple[np.ndarray, Scores]] = []
        self._step_index: int | None = None
        self._objective_value = 0.0

    # ------------------------------------------------------------------------------------------

    def _observation(self, weights: np.ndarray, scores: Scores) -> np.ndarray:
        relative = [*(scores.improvements[name] for name in self.benchmark_names), scores.source, scores.target]
        progress = (self._step_index or 0) / self.num_steps
        epochs = np.minimum(self.run.epochs, MAX_EPOCHS) if self.layout.observe_epochs else []
        values = np.concatenate([weights, np.clip(relative, *RELATIVE_BOUNDS), [progress], epochs])
        return values.astype(np.float32)

    @staticmethod
    def space_of(target_field: str) -> DomainSpace:
        """The built-in domain space of a target field (v1 names its own)."""
        return target_field_space(target_field)

    @classmethod
    def prepare(cls, env_kwargs: Mapping[str, Any] | EnvConfig, progress: bool = True) -> tuple[PreparedData, Path]:
        """Prepare the data and base checkpoint that ``cls(**env_kwargs)`` will use, without building an env.

        Call it once in the main process before starting subprocess workers, so that they find a complete
        cache instead of queueing on its lock.
        """
        config = env_config(cls.env_id, env_kwargs)
        space = cls.space_of(config.target_field) if config.space is None else config.space
        preset = env_preset(config)
        return prepare(space, preset, config.cache_dir, config.data_config, progress=progress)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.run.reset(seed=int(self.np_random.integers(2**31 - 1)))
        self._step_index = 0
        self._objective_value = 0.0
        base = self.layout.scores(self.layout.base_scores)
        self._history = [(self.initial_weights, base)]
        info = {"scores": base.flat(), "mixture": self.initial_weights}
        return self._observation(self.initial_weights, base), info

    def step(self, action):
        if self._step_index is None:
            raise RuntimeError("Call reset() before step(): it restores the base model and starts the run.")
        if self._step_index >= self.num_steps:
            raise RuntimeError(f"The episode ended after {self.num_steps} steps (the CPT budget is spent); "
                               "call reset() to start a new one.")
        weights = self.action_to_weights(action)
        report = self.run.train(weights)
        scores = self.run.evaluate()
        self._step_index += 1

        objective = float(self._objective(scores.source, scores.target))
        reward = objective - self._objective_value
        self._objective_value = objective
        self._history.append((weights, scores))

        timings = dict(self.run.timings)
        self.last_step_timings = {**timings, "total": sum(timings.values())}
        info = {
            "mixture": weights,
            "tokens_per_domain": report.tokens_per_domain.copy(),
            "scores": scores.flat(),
            SOURCE_SCORE: scores.source,
            TARGET_SCORE: scores.target,
            "objective": objective,
            "train_loss": report.loss,
            "tokens_trained": self.run.tokens_trained,
            **({"epochs": self.run.epochs.copy()} if self.layout.observe_epochs else {}),
        }
        terminated = self._step_index >= self.num_steps
        return self._observation(weights, scores), float(reward), bool(terminated), False, info

    # ------------------------------------------------------------------------------------------

    def render(self):
        if self.render_mode == "ansi":
            return self._render_text()
        if self.render_mode == "rgb_array":
            return self._render_picture()
        return None

    def _render_text(self) -> str:
        weights, scores = self._history[-1] if self._history else (self.initial_weights,
                                                                   self.layout.scores(self.layout.base_scores))
        return self._render_table(f"{self.env_id}  step {self._step_index or 0}/{self.num_steps}  "
                                  f"reward={self.reward_name}", weights, scores)

    def _render_picture(self) -> np.ndarray:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(8, 3.5), dpi=80)
        canvas = FigureCanvasAgg(figure)
        weights_axis, scores_axis = figure.subplots(1, 2)
        steps = np.arange(len(self._history))
        weights = np.array([weights for weights, _ in self._history]).T
        weights_axis.stackplot(steps, weights, labels=self.domain_names, step="post")
        weights_axis.set(title="mixture", xlabel="step", ylabel="weight", ylim=(0, 1))
        weights_axis.legend(fontsize=5, loc="upper left", ncol=2)
        for field in ("source", "target"):
            scores_axis.plot(steps, [getattr(scores, field) for _, scores in self._history], marker="o", label=field)
        scores_axis.axhline(0.0, color="grey", lw=0.5)
        scores_axis.set(title="improvement over the base model", xlabel="step")
        scores_axis.legend(fontsize=7)
        figure.tight_layout()
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def close(self):
        run = getattr(self, "run", None)
        if run is not None:
            del self.run
            del run
            gc.collect()
