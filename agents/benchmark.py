"""``mixing-gym benchmark``: any RL algorithm trained on the reference surrogate, validated on the real env.

One protocol (:class:`BenchmarkProtocol`, its version in :data:`PROTOCOL_VERSIONS`) for every algorithm, built in or
yours:

- an algorithm is a **factory** (:class:`AgentFactory`): ``factory(env, seed, budget) -> policy``. It gets the
  protocol's training env (``num_envs`` ``DataMixingSurrogate-v2`` envs stepped in one numpy call, the balanced
  reward less the surrogate's penalty, :func:`make_training_env`), its run's seed and the training budget in
  surrogate env steps (``timesteps``), trains with its own code, and returns a policy
  (:data:`agents.evaluation.Policy`: an SB3 model, an :class:`~agents.base.Agent` or a callable
  ``observation -> action``);
- the built-in algorithms (:data:`BUILTIN_ALGORITHMS`) are factories of the same contract: Stable-Baselines3's PPO,
  A2C, SAC and TD3 (:class:`SB3Factory`, the hyperparameters of :data:`ALGORITHMS`), ``planner``, the
  cross-entropy method on the surrogate model (:func:`train_planner`), and ``dma``, the offline Data
  Mixing Agent, which learns from the reference trajectories of the field (the Minari dataset
  ``mixing-gym/v1-small-v0``) with the configuration of :data:`DMA_CONFIGS`. Yours are named by a spec,
  ``package.module:make_agent`` or ``path/to/file.py:make_agent`` (:func:`resolve_algorithm`), or passed to
  :func:`run_benchmark` as objects;
- the protocol's ``target_field`` picks the field: ``"code"`` trains on the code field's reference surrogate
  (fit on ``mixing-gym/v1-code-small-v0``), validates on ``DataMixing-v1(target_field="code")`` and normalises
  with the code field's reference scores;
- run ``s`` seeds the policy and the envs with ``s``; the final policy should act deterministically (SB3 models
  do);
- every final policy plays one episode on the surrogate (deterministic: it has no noise), and the first
  ``validate_runs`` runs of each algorithm (an argument of :func:`run_benchmark`) one episode on the real
  env (``DataMixing-v1``, ``preset``; policy ``s`` on env seed ``1 + s``, so that the algorithms meet the
  same real seeds), through :func:`agents.evaluation.evaluate_policies`;
- a policy's surrogate score is its return on the surrogate (its final balanced score less the penalty), its real
  score the final balanced score of its real episode, both normalised by :func:`mixing_gym.get_normalized_score`
  on the real env's scale (0: uniform, 100: the search baseline's best real policy), so that they compare; they are
  aggregated the rliable way (:mod:`agents.rl_statistics`); an algorithm's **gap** is a validated policy's
  normalised score on the surrogate minus its score on the real env: how far it exploits where the surrogate is
  wrong.

Every run is saved as it ends (``<output>/<algorithm>-seed<s>/``: ``run.json``, the policy as
:func:`save_policy` wrote it, and the real episodes under ``<output>/real``), so an interrupted benchmark
resumes where it stopped; a run is not trained again under the same name from another spec (its ``source``).
The rows (:data:`COLUMNS`) record each run's spec, the protocol version, the field, who ran it and the command: the
leaderboard's lines (``experiments/leaderboard``).
"""

from __future__ import annotations

import getpass
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import shlex
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import pandas as pd

from agents.backends import Backend
from agents.base import Agent, SB3Agent, play_episode, target_share
from agents.evaluation import Policy, PolicyError, as_agent, evaluate_policies
from agents.harness import mean_ci
from agents.plots import plot_performance_profiles
from agents.rl_statistics import aggregate_table
from agents.runner import JOB_KEY
from mixing_gym import get_normalized_score
from mixing_gym.normalized_scores import reference_scores
from mixing_gym.reference import reference_surrogate
from mixing_gym.storage import atomic_write_bytes, atomic_write_json

#: The version of the protocol by the surrogate env it trains on: the training env and budget, the surrogate episode,
#: the real seeds, the normalisation. Bumped by a change of the protocol or the surrogate that makes new scores
#: incomparable with old ones; a benchmark folder keeps the version it was started under (folders that record none
#: are version 1). Version 2 trains on ``DataMixingSurrogate-v2`` (refit on real episodes of trained policies, with
#: its penalty), and scores a policy on the surrogate by its return there (its final balanced score less the
#: penalty; in version 1, without a penalty, the two are the same).
PROTOCOL_VERSIONS = {"DataMixingSurrogate-v1": 1, "DataMixingSurrogate-v2": 2}

#: Stable-Baselines3's defaults but for: ``gamma`` 1 (an episode's return is its final objective, and episodes
#: end after 8 steps), ``[64, 64]`` networks, PPO's rollouts of 8 episodes per env (A2C's of one), and for the
#: off-policy algorithms batches of 256 after 1,000 random transitions, with Gaussian action noise 0.1 for TD3
#: (which has none by default). SAC and TD3 keep SB3's one update per vector step (per 16 transitions): two
#: took 19 minutes for the four algorithms' 10 seeds, most of it in their updates.
ALGORITHMS: dict[str, dict[str, Any]] = {
    "ppo": {"n_steps": 64, "batch_size": 256, "n_epochs": 10, "gamma": 1.0},
    "a2c": {"n_steps": 8, "gamma": 1.0},
    "sac": {"learning_starts": 1000, "batch_size": 256, "train_freq": 1, "gradient_steps": 1, "gamma": 1.0},
    "td3": {"learning_starts": 1000, "batch_size": 256, "train_freq": 1, "gradient_steps": 1, "gamma": 1.0,
            "action_noise": 0.1},
}
NETWORK = [64, 64]
#: The attribute a spec without ``:name`` names: ``examples/reinforce.py`` is ``examples/reinforce.py:make_agent``.
DEFAULT_FACTORY = "make_agent"
#: The columns of :func:`run_benchmark`'s rows, in order: those of ``docs/results/benchmark_v1_small.csv``, then
#: the ones added since (so that old rows still read).
COLUMNS = ("algorithm", "seed", "timesteps", "surrogate_balanced", "surrogate_target_share", "train_seconds",
           "real_balanced", "surrogate_normalised", "real_normalised", "gap", "spec", "protocol_version", "env_steps",
           "target_field", "ran_by", "command")


@dataclass(frozen=True)
class BenchmarkProtocol:
    """What every run of a benchmark shares; recorded in ``<output>/protocol.json`` with its :attr:`version`.

    Args:
        timesteps: the training budget of each run, in surrogate env steps (transitions: ``num_envs`` a vector
            step; 100,000: 12,500 episodes).
        num_envs: surrogate envs stepped together in the training env.
        preset: the proxy preset of the real env, and of the reference scores.
        surrogate_env_id: the env the algorithms train and are scored on.
        real_env_id: the env the policies are validated on.
        target_field: the target field of both envs (``"math"``, ``"code"``), which has a reference surrogate
            (:data:`mixing_gym.reference.REFERENCE_SURROGATES`) and reference scores.
        surrogate: the folder of a :class:`~mixing_gym.surrogate.SurrogateModel` of ``target_field`` to train and
            score on instead of the reference one (a round of data aggregation trains on its own refit).
    """

    timesteps: int = 100_000
    num_envs: int = 16
    preset: str = "small"
    surrogate_env_id: str = "DataMixingSurrogate-v2"
    real_env_id: str = "DataMixing-v1"
    target_field: str = "math"
    surrogate: str | None = None

    def __post_init__(self) -> None:
        if self.timesteps < 1 or self.num_envs < 1:
            raise ValueError(f"timesteps and num_envs must be positive, got {self}.")
        reference_surrogate(self.surrogate_env_id, self.target_field)  # a KeyError names the fields that have one
        reference_scores(self.real_env_id, self.preset, self.target_field)

    @property
    def version(self) -> int:
        """The protocol's version (:data:`PROTOCOL_VERSIONS`)."""
        return PROTOCOL_VERSIONS[self.surrogate_env_id.removeprefix("mixing_gym:")]

    def surrogate_kwargs(self) -> dict[str, Any]:
        """``gym.make``'s arguments of the surrogate env: the reference surrogate of the target field, or
        ``surrogate``."""
        return {"target_field": self.target_field} if self.surrogate is None else {"surrogate": self.surrogate}


# ------------------------------------------------------------------------------------ the factory contract


class AgentFactory(Protocol):
    """An algorithm, as the benchmark runs it: ``factory(env, seed, budget) -> policy``.

    The benchmark calls it once per run, in a worker process, with:

    - ``env``: the training env, a Gymnasium ``VectorEnv`` of the protocol's ``num_envs`` surrogate envs
      (:func:`make_training_env`: ``gym.make_vec(surrogate_env_id, num_envs, target_field=...)``, stepped in one
      numpy call, with **same-step autoreset**: the step that ends an episode returns the next one's first
      observation, the last one in ``infos["final_obs"]``, as SB3's vector envs do; :func:`sb3_env` adapts it to
      SB3). Episodes last ``env.unwrapped.num_steps`` (8) steps; actions are ``Box(-1, 1, (K,))`` logits per env
      (``env.single_action_space``); the reward is the change of the balanced score, so an episode's return is its
      final balanced score. It has not been reset: call ``env.reset(seed=seed)`` first. It counts the steps
      taken (``env.env_steps``, recorded in the rows); close it or not, the benchmark does;
    - ``seed``: the run's seed: seed the algorithm's randomness and the env's resets with it;
    - ``budget``: the training budget in surrogate env steps (transitions: ``num_envs`` per ``env.step``). Use at
      most this many, counting the steps the algorithm takes to evaluate its candidates; the benchmark does not
      stop a factory there, but records the steps it took (``env_steps``) and warns past 110%;
    - ``run_dir`` (a keyword, only where the factory takes it): the run's folder, for its own files (logs,
      checkpoints).

    It trains with its own code and returns a policy (:data:`agents.evaluation.Policy`): a Stable-Baselines3
    model (saved with ``model.save`` and acting deterministically), an :class:`~agents.base.Agent` (saved with its
    ``save(path)`` where its class also has a ``load(path)`` classmethod, else by ``cloudpickle``), or a callable
    ``observation -> action`` (``(observation, info) -> action`` where it requires two arguments; pickled by
    ``cloudpickle``: let it hold the parameters it needs, not the env). The policy should act deterministically:
    it plays one surrogate episode and, for the first runs, one real episode.

    Write it at the top level of a module or file, and name it on the command line by its spec: ``mixing-gym
    benchmark --algo my_package.module:make_agent`` or ``--algo path/to/file.py:make_agent`` (``:make_agent``
    may be left out); ``name=spec`` names its rows and folders (default: the module's or file's name).
    """

    def __call__(self, env: gym.vector.VectorEnv, seed: int, budget: int) -> Policy:
        ...


class TrainingEnv(gym.vector.VectorWrapper):
    """The env a factory trains on (see :class:`AgentFactory`): a vector env that counts the steps taken.

    Args:
        env: the vector env.
        budget: the run's training budget, in env steps (informational: ``env.budget``).
        target_field: the field the env's surrogate was fit on (``env.target_field``).
    """

    def __init__(self, env: gym.vector.VectorEnv, budget: int, target_field: str = "math"):
        super().__init__(env)
        self.budget = int(budget)
        self.target_field = target_field
        #: Transitions stepped so far: ``num_envs`` per ``step()``.
        self.env_steps = 0

    def step(self, actions: Any) -> Any:
        self.env_steps += self.num_envs
        return super().step(actions)


def make_training_env(protocol: BenchmarkProtocol) -> TrainingEnv:
    """The training env a factory gets under ``protocol`` (:class:`AgentFactory`): ``num_envs`` surrogate envs of
    ``target_field`` in one numpy call, with same-step autoreset, counting the steps taken. Call a factory on it
    to try it outside the benchmark: ``policy = make_agent(make_training_env(protocol), 0, 4096)``.

    Args:
        protocol: the benchmark's protocol.
    """
    from gymnasium.vector import AutoresetMode

    env = gym.make_vec(protocol.surrogate_env_id, num_envs=protocol.num_envs,
                       vectorization_mode="vector_entry_point", autoreset_mode=AutoresetMode.SAME_STEP,
                       **protocol.surrogate_kwargs())
    return TrainingEnv(env, protocol.timesteps, protocol.target_field)


def sb3_env(env: gym.vector.VectorEnv, seed: int) -> Any:
    """``env`` (same-step autoreset, as :func:`make_training_env` makes it) as Stable-Baselines3's ``VecEnv``, env
    ``i`` first reset with ``seed + i``: ``PPO("MlpPolicy", sb3_env(env, seed), seed=seed).learn(budget)``.

    Args:
        env: the training env.
        seed: the run's seed.
    """
    from agents.sb3_vector import VectorEnvAdapter

    adapter = VectorEnvAdapter(env)
    adapter.seed(seed)
    return adapter


# -------------------------------------------------------------------------------- the built-in algorithms


@dataclass(frozen=True)
class SB3Factory:
    """A Stable-Baselines3 algorithm of :data:`ALGORITHMS` as an :class:`AgentFactory`: ``MlpPolicy`` with
    :data:`NETWORK`, its hyperparameters, seeded with the run's seed, trained for the budget on the training env.

    Args:
        algorithm: its name in :data:`ALGORITHMS` (``"ppo"``, ``"a2c"``, ``"sac"``, ``"td3"``).
    """

    algorithm: str

    def __call__(self, env: gym.vector.VectorEnv, seed: int, budget: int) -> Any:
        import stable_baselines3
        from stable_baselines3.common.logger import Logger
        from stable_baselines3.common.noise import NormalActionNoise
        from stable_baselines3.common.vec_env import VecMonitor

        vector_env = VecMonitor(sb3_env(env, seed))
        settings = dict(ALGORITHMS[self.algorithm])
        if "action_noise" in settings:
            dimensions = vector_env.action_space.shape[0]
            scale = settings["action_noise"]
            settings["action_noise"] = NormalActionNoise(np.zeros(dimensions), scale * np.ones(dimensions))
        model_class = getattr(stable_baselines3, self.algorithm.upper())
        model = model_class("MlpPolicy", vector_env, seed=seed, device="cpu", verbose=0,
                            policy_kwargs={"net_arch": NETWORK}, **settings)
        model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default logger leaves a /tmp/SB3-* folder
        return model.learn(budget)


#: The Data Mixing Agent's configuration (:func:`agents.offline.named_offline_config`) under each protocol version's
#: surrogate env: version 2 takes the tuned one (AWR on standardised rewards, chosen on validation seeds by
#: ``experiments/offline_knobs_v1``), the headline's better agent, which trains in seconds where the default's CQL
#: took minutes a run.
DMA_CONFIGS = {"DataMixingSurrogate-v1": "default", "DataMixingSurrogate-v2": "tuned"}


def train_dma(env: gym.vector.VectorEnv, seed: int, budget: int, run_dir: Path | None = None) -> Agent:
    """``dma`` as an :class:`AgentFactory`: the offline Data Mixing Agent (the configuration of :data:`DMA_CONFIGS`)
    trained on the reference trajectories of the training env's field (the 128 collection episodes); it takes no env
    step (its rows' ``timesteps`` are 0) and writes its training log to ``run_dir/training_log.csv``.

    Args:
        env: the training env (read for its surrogate's id and target field).
        seed: seeds the networks and the mini-batches.
        budget: unused: it learns from recorded trajectories.
        run_dir: where its training log goes.
    """
    from agents.offline import named_offline_config, train_offline_agent
    from mixing_gym.trajectories import load_trajectories

    env_id = env.spec.id.removeprefix("mixing_gym:")
    trajectories = reference_surrogate(env_id, env.target_field).trajectories
    agent, log = train_offline_agent(load_trajectories(trajectories), named_offline_config(DMA_CONFIGS[env_id]),
                                     seed=seed)
    if run_dir is not None:
        log.to_csv(Path(run_dir) / "training_log.csv", index=False)
    return agent


def train_planner(env: gym.vector.VectorEnv, seed: int, budget: int) -> Agent:
    """``planner`` as an :class:`AgentFactory`: the cross-entropy method over one mixture for the episode
    (:class:`~agents.planner.SurrogatePlanner`, 64 candidates x 80 iterations: 40,960 surrogate steps) on the
    training env's surrogate model, read directly and under the env's penalty; it steps its own copy of the model,
    not ``env`` (its rows' ``env_steps`` are 0).

    Args:
        env: the training env (read for its surrogate model and penalty).
        seed: seeds the candidates.
        budget: unused: the planner's budget is fixed, under the protocol's.
    """
    from agents.planner import SurrogatePlanner

    surrogate_env = env.unwrapped
    return SurrogatePlanner(surrogate_env.surrogate, penalty=surrogate_env.penalty, seed=seed).learn()


@dataclass(frozen=True)
class BuiltinAlgorithm:
    """An algorithm of :data:`BUILTIN_ALGORITHMS`.

    Args:
        factory: its :class:`AgentFactory`.
        summary: one line for error messages and ``--help``.
        offline: it learns from recorded trajectories, not the env: its runs (the long ones) are scheduled first.
    """

    factory: AgentFactory
    summary: str
    offline: bool = False


#: The built-in algorithms by name: factories of the same contract as yours.
BUILTIN_ALGORITHMS: dict[str, BuiltinAlgorithm] = {
    "ppo": BuiltinAlgorithm(SB3Factory("ppo"), "Stable-Baselines3's PPO"),
    "a2c": BuiltinAlgorithm(SB3Factory("a2c"), "Stable-Baselines3's A2C"),
    "sac": BuiltinAlgorithm(SB3Factory("sac"), "Stable-Baselines3's SAC"),
    "td3": BuiltinAlgorithm(SB3Factory("td3"), "Stable-Baselines3's TD3"),
    "dma": BuiltinAlgorithm(train_dma, "the offline Data Mixing Agent on the reference trajectories", offline=True),
    "planner": BuiltinAlgorithm(train_planner, "the cross-entropy method on the training env's surrogate model"),
}


# ---------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Algorithm:
    """One algorithm of a benchmark, resolved.

    Args:
        name: names its rows and run folders (letters, digits, ``_.-``).
        spec: what the rows record: a built-in name, ``module:factory``, ``path.py:factory``, or for a factory
            object its ``module:qualified name``.
        source: what it resolves to (the resolved file and the factory's name); a run folder trained from another
            source is not resumed under this name.
        payload: a factory object, cloudpickled to reach the workers (``None``: resolved from ``spec`` there).
        offline: schedule its runs first (a built-in's :attr:`BuiltinAlgorithm.offline`).
    """

    name: str
    spec: str
    source: str
    payload: bytes | None = None
    offline: bool = False

    def factory(self) -> AgentFactory:
        """The factory, loaded here."""
        if self.payload is not None:
            import cloudpickle

            return cloudpickle.loads(self.payload)
        if self.source == f"builtin:{self.spec}":
            return BUILTIN_ALGORITHMS[self.spec].factory
        return _load_spec(self.spec)[0]


def _unknown(names: Sequence[str]) -> ValueError:
    return ValueError(f"Unknown algorithms {list(names)}; choose from {list(BUILTIN_ALGORITHMS)}, or give your own "
                      f"factory as 'package.module:{DEFAULT_FACTORY}' or 'path/to/file.py:{DEFAULT_FACTORY}' "
                      "(agents.benchmark.AgentFactory: factory(env, seed, budget) -> policy).")


def _is_spec(text: str) -> bool:
    """Whether ``text`` names a factory by module or file rather than a built-in."""
    return any(mark in text for mark in (":", ".", "/", os.sep))


def _split_spec(spec: str) -> tuple[str, str]:
    """``(module or file, attribute)`` of a spec; a Windows drive's colon is not a separator."""
    target, colon, attribute = spec.rpartition(":")
    if not colon or not attribute or not target or "/" in attribute or "\\" in attribute:
        return spec, DEFAULT_FACTORY
    return target, attribute


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def _load_file(path: Path) -> ModuleType:
    """The module of a Python file, loaded once per process under a name of its own (its folder joins
    ``sys.path``, as ``python file.py`` would); its functions and classes are pickled by value."""
    import cloudpickle

    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"_mixing_gym_algorithm_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    if not path.is_file():
        raise FileNotFoundError(f"No file {path} to load an algorithm from.")
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    cloudpickle.register_pickle_by_value(module)
    return module


def _import(target: str, spec: str) -> ModuleType:
    """The module ``target``, importable from the working folder too (as with ``python -m``)."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as error:
        if error.name is None or not (target == error.name or target.startswith(error.name + ".")):
            raise  # the module was found; something it imports was not
        raise ValueError(f"Algorithm {spec!r}: no module {target!r} can be imported (from {os.getcwd()} or the "
                         f"installed packages); give a file instead, 'path/to/file.py:{DEFAULT_FACTORY}'.") from None


def _load_spec(spec: str) -> tuple[AgentFactory, str]:
    """The factory a spec names and its source (the resolved file or module, and the attribute)."""
    target, attribute = _split_spec(spec)
    if _is_file(target):
        module = _load_file(Path(target))
    else:
        module = _import(target, spec)
    if not hasattr(module, attribute):
        found = sorted(name for name, value in vars(module).items() if inspect.isfunction(value)
                       and value.__module__ == module.__name__ and not name.startswith("_"))
        raise ValueError(f"Algorithm {spec!r}: {target} has no {attribute!r} (its functions: {found}).")
    factory = getattr(module, attribute)
    if not callable(factory):
        raise ValueError(f"Algorithm {spec!r}: {target}.{attribute} is a {type(factory).__name__}, not a factory "
                         "(agents.benchmark.AgentFactory).")
    origin = getattr(module, "__file__", None)
    return factory, f"{Path(origin).resolve() if origin else target}:{attribute}"


def _default_name(spec: str) -> str:
    target, attribute = _split_spec(spec)
    stem = Path(target).stem if _is_file(target) else target.rpartition(".")[2]
    return stem if attribute == DEFAULT_FACTORY else f"{stem}.{attribute}"


def _named(text: str) -> tuple[str | None, str]:
    """``(name, spec)`` of ``name=spec`` (``(None, text)`` without a name)."""
    given, equals, rest = text.strip().partition("=")
    if equals and JOB_KEY.match(given) and rest.strip():
        return given, rest.strip()
    return None, text.strip()


def resolve_algorithm(text: str, name: str | None = None) -> Algorithm:
    """The algorithm a command line names, loaded here to check it.

    Args:
        text: a built-in name (:data:`BUILTIN_ALGORITHMS`), a spec ``package.module:factory`` or
            ``path/to/file.py:factory`` (``:factory`` defaults to ``:make_agent``), or ``name=spec``.
        name: its name (default: the ``name=`` of ``text``, a built-in's name, else the module's or file's name,
            with ``.factory`` where the factory is not ``make_agent``).

    Raises:
        ValueError: an unknown built-in (the message lists them and the spec forms), or a spec whose module, file
            or factory is missing.
    """
    given, text = _named(text)
    name = name or given
    if text in BUILTIN_ALGORITHMS:
        builtin = BUILTIN_ALGORITHMS[text]
        return Algorithm(name or text, text, f"builtin:{text}", offline=builtin.offline)
    if not _is_spec(text):
        raise _unknown([text])
    _, source = _load_spec(text)
    return Algorithm(name or _default_name(text), text, source)


def _object_algorithm(name: str, factory: AgentFactory) -> Algorithm:
    """An algorithm given as a factory object (it reaches the workers by ``cloudpickle``)."""
    import cloudpickle

    if not callable(factory):
        raise ValueError(f"Algorithm {name!r} is a {type(factory).__name__}; give a factory(env, seed, budget) or a "
                         "spec string.")
    builtin = next((key for key, value in BUILTIN_ALGORITHMS.items() if value.factory == factory), None)
    if builtin is not None:
        return Algorithm(name, builtin, f"builtin:{builtin}", offline=BUILTIN_ALGORITHMS[builtin].offline)
    described = factory if inspect.isfunction(factory) or inspect.isclass(factory) else type(factory)
    module = getattr(described, "__module__", "?")
    qualified = getattr(described, "__qualname__", type(factory).__qualname__)
    try:
        origin = str(Path(inspect.getfile(described)).resolve())
    except (TypeError, OSError):
        origin = module
    if module == "__main__":
        spec = f"{os.path.relpath(origin) if os.path.isabs(origin) else origin}:{qualified}"
    else:
        spec = f"{module}:{qualified}"
    try:
        payload = cloudpickle.dumps(factory)
    except Exception as error:
        raise ValueError(f"Algorithm {name!r}: its factory cannot be sent to the worker processes ({error}); define "
                         "it at the top level of a module or file.") from error
    return Algorithm(name, spec, f"{origin}:{qualified}", payload)


def algorithms_of(algorithms: Mapping[str, AgentFactory | str] | Sequence[str]) -> list[Algorithm]:
    """Resolve what :func:`run_benchmark` was given into :class:`Algorithm` s (distinct names).

    Args:
        algorithms: names and specs (:func:`resolve_algorithm`), or a mapping of names to factories or specs.

    Raises:
        ValueError: nothing given, an unknown name, a spec that does not load, a name that cannot name a folder,
            or two algorithms of one name.
    """
    if isinstance(algorithms, str):
        algorithms = [algorithms]
    if not algorithms:
        raise _unknown([])
    if isinstance(algorithms, Mapping):
        resolved = [resolve_algorithm(value, name) if isinstance(value, str) else _object_algorithm(name, value)
                    for name, value in algorithms.items()]
    else:
        unknown = [text for text in algorithms if _named(text)[1] not in BUILTIN_ALGORITHMS
                   and not _is_spec(_named(text)[1])]
        if unknown:
            raise _unknown(unknown)
        resolved = [resolve_algorithm(text) for text in algorithms]
    names = [algorithm.name for algorithm in resolved]
    bad = [name for name in names if not JOB_KEY.match(name)]
    if bad:
        raise ValueError(f"Algorithm names {bad} cannot name folders; use letters, digits, '_', '.' and '-' "
                         "(name=spec names one).")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Two algorithms are named {repeated}; name them apart with name=spec "
                         "(--algo cem2=path/to/cem2.py:make_agent).")
    return resolved


# ------------------------------------------------------------------------------------------- policies


POLICY_FILE = "policy.json"


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(path: str, spec: str | None) -> type:
    module_name, _, qualified = path.partition(":")
    if module_name not in sys.modules and spec and module_name.startswith("_mixing_gym_algorithm_"):
        _load_spec(spec)  # a class of a file's module: load the file again
    target: Any = importlib.import_module(module_name)
    for part in qualified.split("."):
        target = getattr(target, part)
    return target


def save_policy(policy: Policy, folder: str | Path, spec: str | None = None, what: str = "The policy") -> dict:
    """Save a factory's policy into ``folder`` and describe how in ``folder/policy.json``: an SB3 model (or an
    :class:`~agents.base.SB3Agent` of one) as ``model.zip``, an agent whose class has ``save`` and a ``load``
    classmethod by them (into ``agent/``), anything else (any :data:`~agents.evaluation.Policy`) cloudpickled as
    an agent into ``policy.pkl``. Returns the description.

    Args:
        policy: what the factory returned.
        folder: the run's folder.
        spec: the algorithm's spec (a class of a file it names is loaded from it again).
        what: how an error names the policy.

    Raises:
        PolicyError: ``policy`` is not a policy, or cannot be pickled.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = policy.model if isinstance(policy, SB3Agent) else policy
    if not isinstance(policy, Agent) or isinstance(policy, SB3Agent):
        try:
            from stable_baselines3.common.base_class import BaseAlgorithm
        except ImportError:  # pragma: no cover - SB3 is a dependency
            BaseAlgorithm = ()  # noqa: N806
        if isinstance(model, BaseAlgorithm):
            model.save(folder / "model.zip")
            saved = {"format": "sb3", "class": _class_path(type(model)), "file": "model.zip", "spec": spec}
            atomic_write_json(folder / POLICY_FILE, saved)
            return saved
    if isinstance(policy, Agent) and callable(getattr(policy, "save", None)) and \
            inspect.ismethod(getattr(type(policy), "load", None)):
        policy.save(folder / "agent")
        saved = {"format": "agent", "class": _class_path(type(policy)), "file": "agent", "spec": spec}
    else:
        import cloudpickle

        agent = as_agent(policy, what)
        try:
            atomic_write_bytes(folder / "policy.pkl", cloudpickle.dumps(agent))
        except Exception as error:
            raise PolicyError(f"{what} cannot be pickled ({type(error).__name__}: {error}); let it hold the "
                              "parameters it acts with, not the env, or return an SB3 model or an Agent with "
                              "save/load.") from error
        saved = {"format": "pickle", "class": _class_path(type(agent)), "file": "policy.pkl", "spec": spec}
    atomic_write_json(folder / POLICY_FILE, saved)
    return saved


def load_policy(run_dir: str | Path) -> Agent:
    """The final policy of a run (as :func:`save_policy` wrote it), as an :class:`~agents.base.Agent`.

    Args:
        run_dir: the run's folder (``<output>/<algorithm>-seed<s>``). A folder of a benchmark from before
            ``policy.json`` holds ``dma``'s ``agent/`` or an SB3 algorithm's ``model.zip``, named by the folder.
    """
    run_dir = Path(run_dir)
    description_path = run_dir / POLICY_FILE
    if not description_path.exists():
        name = run_dir.name.rpartition("-seed")[0]
        if name == "dma":
            description = {"format": "agent", "class": "agents.offline:DataMixingAgent", "file": "agent"}
        else:
            description = {"format": "sb3", "class": f"stable_baselines3:{name.upper()}", "file": "model.zip"}
    else:
        description = json.loads(description_path.read_text())
    path, spec = run_dir / description["file"], description.get("spec")
    if description["format"] == "pickle":
        import cloudpickle

        target = _split_spec(spec)[0] if spec else ""
        if _is_file(target) and str(Path(target).resolve().parent) not in sys.path:
            sys.path.append(str(Path(target).resolve().parent))  # the file's sibling modules, pickled by reference
        return cloudpickle.loads(path.read_bytes())
    cls = _import_class(description["class"], spec)
    if description["format"] == "sb3":
        return SB3Agent(cls.load(path, device="cpu"))
    return cls.load(path)


# ---------------------------------------------------------------------------------------------- training


def _call_factory(factory: AgentFactory, env: TrainingEnv, seed: int, budget: int, run_dir: Path) -> Policy:
    """``factory(env, seed, budget)``, with ``run_dir=`` where it takes that keyword (or ``**kwargs``)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        parameters = []
    if any(p.name == "run_dir" or p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters):
        return factory(env, seed, budget, run_dir=run_dir)
    return factory(env, seed, budget)


def train_run(algorithm: Algorithm, seed: int, protocol: BenchmarkProtocol, run_dir: Path) -> dict[str, Any]:
    """Worker task: train one run, save and reload its policy, score it on the surrogate, write and return
    ``run.json``.

    Raises:
        PolicyError: the factory returned no policy, or one that fails on the surrogate (the message names the
            algorithm, its spec and the run).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: one thread is as fast, more would spin against the other workers
    try:
        return _train_run(algorithm, seed, protocol, Path(run_dir))
    finally:
        torch.set_num_threads(threads)


def _train_run(algorithm: Algorithm, seed: int, protocol: BenchmarkProtocol, run_dir: Path) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    factory = algorithm.factory()
    what = f"What algorithm {algorithm.name!r} ({algorithm.spec}) returned for seed {seed}"
    env = make_training_env(protocol)
    start = time.perf_counter()
    try:
        policy = _call_factory(factory, env, seed, protocol.timesteps, run_dir)
        env_steps = env.env_steps
    finally:
        env.close()
    save_policy(policy, run_dir, algorithm.spec, what)
    seconds = time.perf_counter() - start
    surrogate = gym.make(protocol.surrogate_env_id, **protocol.surrogate_kwargs())
    try:
        episode = play_episode(load_policy(run_dir), surrogate, seed=seed).record()
    except Exception as error:
        raise PolicyError(f"The policy of algorithm {algorithm.name!r} ({algorithm.spec}), seed {seed}, failed on "
                          f"{protocol.surrogate_env_id}: {type(error).__name__}: {error}") from error
    finally:
        surrogate.close()
    run = {"algorithm": algorithm.name, "seed": seed, "train_seconds": seconds,
           "surrogate_balanced": episode["return"], "surrogate_target_share": target_share(episode),
           "spec": algorithm.spec, "source": algorithm.source, "protocol_version": protocol.version,
           "env_steps": env_steps, "timesteps": protocol.timesteps if env_steps else 0, "protocol": asdict(protocol)}
    atomic_write_json(run_dir / "run.json", run)
    return run


# ------------------------------------------------------------------------------------------------ runner


def run_benchmark(protocol: BenchmarkProtocol, algorithms: Mapping[str, AgentFactory | str] | Sequence[str],
                  seeds: int | Sequence[int] = 10, output: str | Path = "runs/benchmark", validate_runs: int = 5,
                  backend: Backend | None = None, progress: bool = True, ran_by: str | None = None,
                  command: str | None = None) -> pd.DataFrame:
    """Train what is missing, validate on the real env, and return one row per run (:data:`COLUMNS`; summarise
    them with :func:`summarise`, write them with :func:`write_report`).

    Args:
        protocol: the settings every run shares (an ``output`` keeps the protocol it was started with).
        algorithms: built-in names (:data:`BUILTIN_ALGORITHMS`) and specs (``"package.module:make_agent"``,
            ``"path/to/file.py:make_agent"``, ``"name=spec"``), or a mapping of names to factories
            (:class:`AgentFactory`) or specs: ``{"ppo": "ppo", "mine": make_agent}``.
        seeds: runs per algorithm, seeds ``0 .. seeds-1`` (or the seeds themselves).
        output: where the runs, the real episodes, the table and the plots go; a benchmark resumes there.
        validate_runs: runs of each algorithm (of the first seeds) that also play one real episode (0: none).
        backend: where the runs and the real episodes run, in parallel (``mixing-gym benchmark``: two worker
            processes here); default: one after another in this process.
        progress: print each run as it ends and show the real episodes' progress bar.
        ran_by: who ran it (a name, a team), for the leaderboard's rows; default: the login name.
        command: the command that ran it, for the same rows; default: this process's command line.

    Raises:
        ValueError: an unknown algorithm, a spec that does not load, another protocol in ``output``, or a run
            folder there trained from another spec under the same name.
        PolicyError: a factory returned no policy (the message names it and what it returned).
    """
    resolved = algorithms_of(algorithms)
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError("No seeds: give at least one run per algorithm.")
    if validate_runs < 0:
        raise ValueError(f"validate_runs must be >= 0, got {validate_runs}.")
    output = Path(output)
    _check_protocol(output, protocol)
    by_name = {algorithm.name: algorithm for algorithm in resolved}
    runs = {(algorithm.name, seed): output / f"{algorithm.name}-seed{seed}" for algorithm in resolved for seed in seeds}
    _check_sources(runs, by_name)
    pending = [pair for pair, run_dir in runs.items() if not (run_dir / "run.json").exists()]
    pending.sort(key=lambda pair: not by_name[pair[0]].offline)  # the long offline runs first: workers end together
    if pending and backend is None:
        for name, seed in pending:
            _report(train_run(by_name[name], seed, protocol, runs[name, seed]), protocol, progress)
    elif pending:
        with backend.executor() as pool:
            futures = [pool.submit(train_run, by_name[name], seed, protocol, runs[name, seed])
                       for name, seed in pending]
            try:
                for future in as_completed(futures):
                    _report(future.result(), protocol, progress)
            except BaseException:
                for future in futures:  # a factory's error: stop, keeping the runs that ended
                    future.cancel()
                raise
    rows = pd.DataFrame([_row(json.loads((run_dir / "run.json").read_text()), protocol)
                         for run_dir in runs.values()])
    validated = seeds[:validate_runs]
    real = validate(runs, validated, protocol, output / "real", backend, progress)
    rows["real_balanced"] = [real.get((name, seed), np.nan) for name, seed in zip(rows["algorithm"], rows["seed"])]
    for kind in ("surrogate", "real"):
        rows[f"{kind}_normalised"] = get_normalized_score(protocol.real_env_id, rows[f"{kind}_balanced"].to_numpy(),
                                                          protocol.preset, protocol.target_field)
    rows["gap"] = rows["surrogate_normalised"] - rows["real_normalised"]
    rows["target_field"] = protocol.target_field
    rows["ran_by"] = ran_by or getpass.getuser()
    rows["command"] = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return rows[list(COLUMNS)]


def _report(run: dict[str, Any], protocol: BenchmarkProtocol, progress: bool) -> None:
    over = run["env_steps"] > 1.1 * protocol.timesteps
    if over:
        warnings.warn(f"{run['algorithm']} seed {run['seed']} took {run['env_steps']} env steps for a budget of "
                      f"{protocol.timesteps}: its scores do not compare under the protocol.", stacklevel=3)
    if progress:
        print(f"  {run['algorithm']:<4} seed {run['seed']}: surrogate balanced {run['surrogate_balanced']:+.4f} "
              f"({run['train_seconds']:.0f} s, {run['env_steps']} env steps)", flush=True)


def _row(run: dict[str, Any], protocol: BenchmarkProtocol) -> dict[str, Any]:
    """A run's row; a run of a benchmark from before the open protocol was a built-in under version 1."""
    legacy = "spec" not in run
    return {**{column: run.get(column) for column in COLUMNS if column in run},
            "timesteps": run.get("timesteps", 0 if run["algorithm"] == "dma" else protocol.timesteps),
            "spec": run.get("spec", run["algorithm"]), "protocol_version": run.get("protocol_version", 1),
            "env_steps": np.nan if legacy else run["env_steps"]}


def _check_sources(runs: dict[tuple[str, int], Path], algorithms: Mapping[str, Algorithm]) -> None:
    """Refuse to resume a run folder trained from another source under the same name."""
    for (name, _), run_dir in runs.items():
        path = run_dir / "run.json"
        if not path.exists():
            continue
        recorded = json.loads(path.read_text()).get("source", f"builtin:{name}")
        if recorded != algorithms[name].source:
            raise ValueError(f"{run_dir} was trained by {recorded}, not {algorithms[name].source} "
                             f"({algorithms[name].spec}); name this algorithm otherwise (name=spec) or give another "
                             "output folder.")


def validate(runs: dict[tuple[str, int], Path], seeds: Sequence[int], protocol: BenchmarkProtocol, output: Path,
             backend: Backend | None = None, progress: bool = True,
             env_kwargs: dict[str, Any] | None = None) -> dict[tuple[str, int], float]:
    """The final balanced score of one real episode (``protocol.real_env_id`` on ``protocol.preset``, or with
    ``env_kwargs``, on ``protocol.target_field``) of each run of ``seeds`` among ``runs`` (``(algorithm, seed) ->
    run folder``), played by :func:`agents.evaluation.evaluate_policies`; run ``s`` plays env seed ``1 + s``. The
    episodes are kept under ``output``."""
    seeds = list(seeds)
    names = list(dict.fromkeys(name for name, seed in runs if seed in seeds))
    if not names:
        return {}
    policies = {name: [load_policy(runs[name, seed]) for seed in seeds] for name in names}
    scores = evaluate_policies(policies, protocol.target_field, [1 + seed for seed in seeds],
                               env_kwargs or {"preset": protocol.preset}, backend, output,
                               env_id=protocol.real_env_id, normalize=False, progress=progress)
    return {(name, seed): float(scores[name].balanced[i]) for name in names for i, seed in enumerate(seeds)}


def _check_protocol(output: Path, protocol: BenchmarkProtocol) -> None:
    """Record the protocol of a new benchmark; refuse to resume one under another (its runs would not compare)."""
    path = output / "protocol.json"
    if path.exists():
        recorded = json.loads(path.read_text())
        version = recorded.pop("version", 1)
        recorded = asdict(BenchmarkProtocol(**recorded))  # a field added since: its default
        if recorded != asdict(protocol) or version != protocol.version:
            raise ValueError(f"{output} holds a benchmark run under {recorded} (protocol version {version}), not "
                             f"{asdict(protocol)} (version {protocol.version}); resume it with the same options or "
                             "give another --output.")
        return
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {**asdict(protocol), "version": protocol.version})


# ------------------------------------------------------------------------------------------------ report


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per algorithm: normalised surrogate and real scores as IQMs with stratified-bootstrap 95%
    intervals and the probability of improving on the best algorithm, the gap's mean and 95% interval, and the
    median training time of a run."""
    def scores(column: str) -> dict[str, np.ndarray]:
        valid = rows.dropna(subset=[column])
        return {name: group[column].to_numpy()[:, None] for name, group in valid.groupby("algorithm", sort=False)}

    surrogate = aggregate_table(scores("surrogate_normalised")).set_index("algorithm")
    table = surrogate[["runs", "iqm", "iqm_low", "iqm_high", "p_improve_over_best"]].add_prefix("surrogate_")
    real_scores = scores("real_normalised")
    if real_scores:
        real = aggregate_table(real_scores).set_index("algorithm")
        table = table.join(real[["runs", "iqm", "iqm_low", "iqm_high", "p_improve_over_best"]].add_prefix("real_"))
        gaps = {name: mean_ci(group["gap"].dropna().tolist()) for name, group in rows.groupby("algorithm")
                if group["gap"].notna().any()}
        table["gap"] = pd.Series({name: gap[0] for name, gap in gaps.items()})
        table["gap_half_width"] = pd.Series({name: gap[1] for name, gap in gaps.items()})
    table["train_seconds"] = rows.groupby("algorithm")["train_seconds"].median()
    return table.reset_index()


def markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (normalised scores: 0 uniform, 100 the search baseline's best)."""
    def interval(row: pd.Series, kind: str) -> str:
        if f"{kind}_iqm" not in row or pd.isna(row[f"{kind}_iqm"]):
            return "—"
        return f"{row[f'{kind}_iqm']:.0f} [{row[f'{kind}_iqm_low']:.0f}, {row[f'{kind}_iqm_high']:.0f}]"

    lines = ["| algorithm | runs | surrogate IQM [95% CI] | P(> best), surrogate | real runs | real IQM [95% CI] "
             "| gap (surrogate − real) | train s/run |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for _, row in table.iterrows():
        real_runs = int(row["real_runs"]) if "real_runs" in row and pd.notna(row["real_runs"]) else 0
        gap = (f"{row['gap']:+.0f} ± {row['gap_half_width']:.0f}" if "gap" in row and pd.notna(row["gap"]) else "—")
        lines.append(f"| {row['algorithm']} | {int(row['surrogate_runs'])} | {interval(row, 'surrogate')} | "
                     f"{row['surrogate_p_improve_over_best']:.2f} | {real_runs} | {interval(row, 'real')} | {gap} | "
                     f"{row['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def write_report(rows: pd.DataFrame, output: str | Path, results: str | Path | None = None) -> pd.DataFrame:
    """Write ``benchmark.csv`` (a row per run; also to ``results`` when given), ``benchmark.md`` and the
    performance profiles of the normalised scores (``profiles_surrogate.png``, ``profiles_real.png``)."""
    output = Path(output)
    table = summarise(rows)
    rows.to_csv(output / "benchmark.csv", index=False)
    if results is not None:
        Path(results).parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(results, index=False)
    (output / "benchmark.md").write_text(markdown(table))
    for kind in ("surrogate", "real"):
        valid = rows.dropna(subset=[f"{kind}_normalised"])
        if len(valid):
            plot_performance_profiles({name: group[f"{kind}_normalised"].to_numpy()[:, None]
                                       for name, group in valid.groupby("algorithm", sort=False)},
                                      output / f"profiles_{kind}.png",
                                      xlabel=f"normalised score on the {kind} env (0 uniform, 100 the search's best)")
    return table
