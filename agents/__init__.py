"""Reference agents and baselines for DataMixing-v0 (they import mixing_gym, never the reverse).

- :mod:`agents.base`: the :class:`Agent` interface, :class:`EnvInfo`, adapters and the episode loop;
- :mod:`agents.baselines`: fixed heuristics, RegMix, Online Data Mixing, DoReMi;
- :mod:`agents.ppo`: reference PPO (Stable-Baselines3), resumable;
- :mod:`agents.harness`: compare agents on the same seeds, with tables and plots;
- :data:`AGENTS`: the agents by name.
"""

from agents.base import Agent, EnvInfo, FunctionAgent, MixtureAgent, SB3Agent, run_episode
from agents.common import weights_to_action
from agents.registry import AGENTS

__all__ = ["AGENTS", "Agent", "EnvInfo", "FunctionAgent", "MixtureAgent", "SB3Agent", "run_episode",
           "weights_to_action"]
