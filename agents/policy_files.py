"""A benchmark run's final policy on disk: :func:`save_policy` writes whatever a factory returned (an SB3 model, an
:class:`~agents.base.Agent` with ``save``/``load``, or any other policy, cloudpickled) and describes it in
``policy.json``; :func:`load_policy` reads it back as an :class:`~agents.base.Agent`, in the process that validates
it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from agents.algorithms import is_file_target, load_spec, split_spec
from agents.base import Agent, SB3Agent
from agents.evaluation import Policy, PolicyError, as_agent
from mixing_gym.storage import atomic_write_bytes, atomic_write_json

POLICY_FILE = "policy.json"


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(path: str, spec: str | None) -> type:
    module_name, _, qualified = path.partition(":")
    if module_name not in sys.modules and spec and module_name.startswith("_mixing_gym_algorithm_"):
        load_spec(spec)  # a class of a file's module: load the file again
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

        target = split_spec(spec)[0] if spec else ""
        if is_file_target(target) and str(Path(target).resolve().parent) not in sys.path:
            sys.path.append(str(Path(target).resolve().parent))  # the file's sibling modules, pickled by reference
        return cloudpickle.loads(path.read_bytes())
    cls = _import_class(description["class"], spec)
    if description["format"] == "sb3":
        return SB3Agent(cls.load(path, device="cpu"))
    return cls.load(path)
