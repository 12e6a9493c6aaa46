"""The configuration of a real env (``DataMixing-v1``, ``DataMixing-v0``): one frozen dataclass.

``gym.make("DataMixing-v1", **kwargs)`` builds an :class:`EnvConfig` from its keyword arguments
(:func:`env_config`), and everything that needs to know what an env is reads it from there: the env
itself, the preparation of its data and base checkpoint, the episode caches (:attr:`EnvConfig.cache_key`)
and the trajectory datasets (:meth:`EnvConfig.to_json`). An unknown argument is an error that names the
closest valid one.

The fields fall in three groups, which is what decides where a change of them reaches:

- :data:`PREPARE_FIELDS`: what the data and the base checkpoint are built from (a change prepares anew);
- :data:`RUN_ONLY_FIELDS`: where and how fast an episode runs, never what it records (not in the cache key);
- every other field shapes the episodes (the MDP, the scoring, the training run).

Objects (a :class:`~mixing_gym.models.ProxyPreset`, a :class:`~mixing_gym.prepare.DataConfig`, a
:class:`~mixing_gym.domains.DomainSpace`) are accepted as they are: the module imports none of the heavy ones,
so that the trajectories, the harness and the surrogate read configs without torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from mixing_gym.mdp import ScoreObjective, check_action_mode
from mixing_gym.storage import fingerprint

#: Fields that decide the prepared data and the base checkpoint.
PREPARE_FIELDS = ("preset", "num_steps", "tokens_per_step", "model", "target_field", "space", "cache_dir",
                  "data_config")
#: Fields that change where or how fast an episode runs, not what it records.
RUN_ONLY_FIELDS = ("cache_dir", "auto_prepare", "torch_threads", "render_mode")
BENCHMARK_SETS = ("bpb", "all")


@dataclass(frozen=True)
class EnvConfig:
    """The keyword arguments of ``gym.make("DataMixing-v1", ...)`` (and of v0), checked once.

    The env docstrings (:class:`~mixing_gym.envs.DataMixingEnv`) say what each argument does; the defaults
    here are ``DataMixing-v0``'s, and :data:`VERSION_DEFAULTS` holds those v1 changes.

    Args:
        preset: the proxy: ``"micro"``, ``"small"``, ``"paper-50m"``, a :class:`~mixing_gym.models.ProxyPreset`
            or its fields as a dict.
        target_field: ``"math"`` or ``"code"``: the built-in domain space of the env's version.
        num_steps: re-weighting steps of an episode (``None``: the preset's).
        tokens_per_step: tokens trained between two re-weightings (``None``: the preset's).
        reward: the objective ``J(s, t)`` whose change is the reward: a name or a callable.
        reward_coef: ``c`` of ``reward="weighted"``.
        action_mode: ``"logits"`` or ``"weights"``.
        temperature: of the softmax that maps logits to weights.
        benchmarks: ``"bpb"`` (held-out bits per byte and the task benchmarks) or ``"all"`` (adds accuracy tasks).
        aggregate: the benchmarks of the field aggregates: ``"bpb"``, ``"tasks"`` or ``"all"``.
        standard_tasks: extra lm-eval tasks by name (:class:`~mixing_gym.evaluation.StandardTask`).
        model: a local Hugging Face model directory used as the proxy.
        space: a custom domain space (a ``DomainSpace``, a config dict or a YAML path); overrides ``target_field``.
        cache_dir: the cache root (default ``$MIXING_GYM_CACHE`` or ``~/.cache/mixing_gym``).
        data_config: how the data is prepared (a :class:`~mixing_gym.prepare.DataConfig` or its fields).
        auto_prepare: prepare what is missing on first use (else a missing cache is an error naming the command).
        torch_threads: set torch's threads of this process to this many when the env is made (``None``: leave
            the process's setting alone; the command line and the worker processes set one thread each).
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"``.
        compile: train through ``torch.compile``.
        device: the torch device of the proxy.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        target_epochs: finite target data (``None``: every prepared token).
        observe_epochs: append each domain's epochs to the observation.
        eval_batch_size: lm-eval's batch size.
    """

    preset: Any = "small"
    target_field: str = "math"
    num_steps: int | None = None
    tokens_per_step: int | None = None
    reward: str | ScoreObjective = "balanced"
    reward_coef: float = 0.5
    action_mode: str = "logits"
    temperature: float = 0.25
    benchmarks: str = "bpb"
    aggregate: str = "bpb"
    standard_tasks: tuple = ()
    model: str | os.PathLike | None = None
    space: Any = None
    cache_dir: str | os.PathLike | None = None
    data_config: Any = None
    auto_prepare: bool = True
    torch_threads: int | None = None
    precision: str = "auto"
    compile: bool = False
    device: str = "cpu"
    render_mode: str | None = None
    target_epochs: float | None = None
    observe_epochs: bool = False
    eval_batch_size: int = 64

    def __post_init__(self):
        check_action_mode(self.action_mode, self.temperature)
        if self.target_epochs is not None and not self.target_epochs > 0:
            raise ValueError(f"target_epochs must be positive (None: plentiful target data), got {self.target_epochs}.")
        if self.benchmarks not in BENCHMARK_SETS:
            raise ValueError(f"Unknown benchmarks {self.benchmarks!r}; use one of {BENCHMARK_SETS}.")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be at least 1 (None: leave torch's setting), "
                             f"got {self.torch_threads}.")
        object.__setattr__(self, "standard_tasks", tuple(self.standard_tasks))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
                    env_id: str = "DataMixing-v1") -> EnvConfig:
        """The config of ``gym.make(env_id, **kwargs)`` on top of the version's ``defaults``.

        Raises:
            TypeError: an argument the env does not take, naming the closest valid one and listing them all.
        """
        names = [field.name for field in fields(cls)]
        unknown = [name for name in kwargs if name not in names]
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, names, n=1)
                hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise TypeError(f"{env_id} got unknown argument{'s' * (len(unknown) > 1)} {', '.join(hints)}; "
                            f"its arguments are {', '.join(names)}.")
        return cls(**{**(defaults or {}), **kwargs})

    def to_json(self, only_given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The fields as plain JSON values (dataclasses as dicts, paths as strings), as datasets record them.

        Args:
            only_given: record only these keys (the arguments a caller gave), so that a recording stays what
                was asked for rather than every default of the day.

        Raises:
            ValueError: a field JSON cannot hold (a callable reward, a ``DomainSpace`` object), named.
        """
        keys = [field.name for field in fields(self)] if only_given is None else list(only_given)
        return env_kwargs_to_json({key: getattr(self, key) for key in keys})

    @property
    def cache_key(self) -> str:
        """A fingerprint of every field that changes what an episode records (not :data:`RUN_ONLY_FIELDS`)."""
        identity = {field.name: _identity(getattr(self, field.name)) for field in fields(self)
                    if field.name not in RUN_ONLY_FIELDS}
        return fingerprint(identity)


#: The defaults of ``DataMixing-v1`` where they differ from :class:`EnvConfig`'s (v0's).
VERSION_DEFAULTS: dict[str, dict[str, Any]] = {
    "DataMixing-v0": {},
    "DataMixing-v1": {"aggregate": "tasks", "target_epochs": 4.0, "observe_epochs": True, "eval_batch_size": 16},
}


def env_config(env_id: str, kwargs: Mapping[str, Any] | EnvConfig | None = None) -> EnvConfig:
    """The :class:`EnvConfig` of ``gym.make(env_id, **kwargs)`` for a real env (with or without ``mixing_gym:``)."""
    if isinstance(kwargs, EnvConfig):
        return kwargs
    name = env_id.rpartition(":")[2]
    if name not in VERSION_DEFAULTS:
        raise ValueError(f"{env_id} is not a real env; an EnvConfig describes one of {list(VERSION_DEFAULTS)}.")
    return EnvConfig.from_kwargs(kwargs or {}, VERSION_DEFAULTS[name], name)


def episode_cache_key(env_id: str, kwargs: Mapping[str, Any]) -> str:
    """What an episode cache is keyed by: the real envs' :attr:`EnvConfig.cache_key` with the env's version, or
    for another env (the surrogate) its id and arguments."""
    name = env_id.rpartition(":")[2]
    if name in VERSION_DEFAULTS:
        return fingerprint({"env_id": name, "config": env_config(name, kwargs).cache_key})
    return fingerprint({"env_id": name, "kwargs": {key: _identity(value) for key, value in kwargs.items()
                                                  if key not in RUN_ONLY_FIELDS}})


def env_kwargs_to_json(env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``gym.make`` keyword arguments as plain JSON values, as episodes and datasets record them: dataclasses (a
    ``ProxyPreset``, a ``DataConfig``, ``StandardTask`` s) as dicts, which the env accepts as they are, paths as
    strings. Anything else JSON cannot hold (a callable reward, a ``DomainSpace`` object) is an error naming it."""
    return {name: _plain(name, value) for name, value in env_kwargs.items()}


def _identity(value: Any) -> Any:
    """A JSON-able stand-in for a field's value: a callable by its qualified name (its repr holds an address)."""
    if callable(value) and not dataclasses.is_dataclass(value):
        return f"{value.__module__}.{value.__qualname__}"
    try:
        return _plain("", value)
    except ValueError:
        return repr(value)


def _plain(name: str, value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {key: _plain(f"{name}.{key}", item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(name, item) for item in value]
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise ValueError(f"env argument {name!r} = {value!r} cannot be recorded as JSON; pass a plain value (a name, "
                         "a config dict, a path) rather than an object or a callable.") from None
    return value
