"""Gymnasium environments of mixing-gym."""

from mixing_gym.envs.data_mixing import DataMixingEnv

__all__ = ["DataMixingEnv"]
