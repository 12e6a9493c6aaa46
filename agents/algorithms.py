"""The algorithms a benchmark runs: the factory contract, the built-in algorithms, and the specs that name yours.

An algorithm is a **factory** (:class:`AgentFactory`): ``factory(env, seed, budget) -> policy``, called once per run
of :func:`agents.benchmark.run_benchmark` on the protocol's training env. The built-in ones
(:data:`BUILTIN_ALGORITHMS`) are factories of the same contract: Stable-Baselines3's PPO, A2C, SAC and TD3
(:class:`SB3Factory`, the hyperparameters of :data:`ALGORITHMS`), ``planner``, the cross-entropy method on the
surrogate model (:func:`train_planner`), and ``dma``, the offline Data Mixing Agent, which learns from the reference
trajectories of the field (:func:`train_dma`). Yours are named by a spec, ``package.module:make_agent`` or
``path/to/file.py:make_agent`` (:func:`resolve_algorithm`), or given as objects (:func:`algorithms_of`); either way
they resolve to an :class:`Algorithm`, which names its rows and run folders and reaches the worker processes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from agents.base import Agent
from agents.evaluation import Policy
from agents.runner import JOB_KEY
from mixing_gym.reference import SURROGATE_VERSIONS, reference_surrogate

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


# ------------------------------------------------------------------------------------ the factory contract


class AgentFactory(Protocol):
    """An algorithm, as the benchmark runs it: ``factory(env, seed, budget) -> policy``.

    The benchmark calls it once per run, in a worker process, with:

    - ``env``: the training env, a Gymnasium ``VectorEnv`` of the protocol's ``num_envs`` surrogate envs
      (:func:`agents.benchmark.make_training_env`: ``gym.make_vec(surrogate_env_id, num_envs,
      target_field=...)``, stepped in one numpy call, with **same-step autoreset**: the step that ends an episode
      returns the next one's first observation, the last one in ``infos["final_obs"]``, as SB3's vector envs do;
      :func:`sb3_env` adapts it to SB3). Episodes last ``env.unwrapped.num_steps`` (8) steps; actions are
      ``Box(-1, 1, (K,))`` logits per env (``env.single_action_space``); the reward is the change of the balanced
      score, so an episode's return is its final balanced score. It has not been reset: call
      ``env.reset(seed=seed)`` first. It counts the steps taken (``env.env_steps``, recorded in the rows); close it
      or not, the benchmark does;
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


def sb3_env(env: gym.vector.VectorEnv, seed: int) -> Any:
    """``env`` (same-step autoreset, as :func:`~agents.benchmark.make_training_env` makes it) as Stable-Baselines3's
    ``VecEnv``, env ``i`` first reset with ``seed + i``: ``PPO("MlpPolicy", sb3_env(env, seed),
    seed=seed).learn(budget)``.

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
#: surrogate env: versions 2 on take the tuned one (AWR on standardised rewards, chosen on validation seeds by
#: ``experiments/offline_knobs_v1``), the headline's better agent, which trains in seconds where the default's CQL
#: took minutes a run.
DMA_CONFIGS = {f"DataMixingSurrogate-v{version}": "default" if version == 1 else "tuned"
               for version in SURROGATE_VERSIONS}


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
        return load_spec(self.spec)[0]


def _unknown(names: Sequence[str]) -> ValueError:
    return ValueError(f"Unknown algorithms {list(names)}; choose from {list(BUILTIN_ALGORITHMS)}, or give your own "
                      f"factory as 'package.module:{DEFAULT_FACTORY}' or 'path/to/file.py:{DEFAULT_FACTORY}' "
                      "(agents.algorithms.AgentFactory: factory(env, seed, budget) -> policy).")


def _is_spec(text: str) -> bool:
    """Whether ``text`` names a factory by module or file rather than a built-in."""
    return any(mark in text for mark in (":", ".", "/", os.sep))


def split_spec(spec: str) -> tuple[str, str]:
    """``(module or file, attribute)`` of a spec; a Windows drive's colon is not a separator."""
    target, colon, attribute = spec.rpartition(":")
    if not colon or not attribute or not target or "/" in attribute or "\\" in attribute:
        return spec, DEFAULT_FACTORY
    return target, attribute


def is_file_target(target: str) -> bool:
    """Whether a spec's module part (:func:`split_spec`) names a Python file rather than an importable module."""
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


def load_spec(spec: str) -> tuple[AgentFactory, str]:
    """The factory a spec names and its source (the resolved file or module, and the attribute)."""
    target, attribute = split_spec(spec)
    if is_file_target(target):
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
                         "(agents.algorithms.AgentFactory).")
    origin = getattr(module, "__file__", None)
    return factory, f"{Path(origin).resolve() if origin else target}:{attribute}"


def _default_name(spec: str) -> str:
    target, attribute = split_spec(spec)
    stem = Path(target).stem if is_file_target(target) else target.rpartition(".")[2]
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
    _, source = load_spec(text)
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
    """Resolve what :func:`~agents.benchmark.run_benchmark` was given into :class:`Algorithm` s (distinct names).

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
