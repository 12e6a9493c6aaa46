"""mixing-gym: learning to mix pre-training data as a Gymnasium environment."""

__version__ = "0.1.0"
