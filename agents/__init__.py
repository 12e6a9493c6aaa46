"""Reference agents and baselines for the mixing envs (they import mixing_gym, never the reverse).

- :mod:`agents.base`: the :class:`Agent` interface, adapters and the episode loop (:func:`play_episode`);
- :mod:`agents.baselines`: fixed heuristics, RegMix, Online Data Mixing, DoReMi;
- :mod:`agents.ppo`: reference PPO (Stable-Baselines3), resumable;
- :mod:`agents.offline`: the offline Data Mixing Agent (behaviour cloning, then CQL);
- :mod:`agents.runner`: the one episode runner (here or on a backend, resumable through a store);
- :mod:`agents.harness`: compare agents on the same seeds, with tables and plots;
- :func:`make_agent`: every agent by name (:mod:`agents.registry`).

``import agents`` needs neither torch nor lm-eval: the baselines act on the surrogate env without them.
"""

from agents.base import Agent, FunctionAgent, MixtureAgent, PlayedEpisode, SB3Agent, play_episode
from agents.registry import make_agent

__all__ = ["Agent", "FunctionAgent", "MixtureAgent", "PlayedEpisode", "SB3Agent", "make_agent", "play_episode"]
