"""mixing-gym: learning to mix pre-training data as a Gymnasium environment.

Importing the package registers ``DataMixing-v0``, ``DataMixing-v1``, ``DataMixingSurrogate-v0``,
``DataMixingSurrogate-v1`` (the surrogate env on a reference surrogate shipped in the package, of the math field
or, with ``target_field="code"``, of the code field: :mod:`mixing_gym.reference`), ``DataMixingSurrogate-v2`` (the
same on the second reference surrogates, refit on real episodes of trained policies, with their penalty on the
ensemble's disagreement by default), ``DataMixingSurrogate-v3`` to ``-v6`` (each refit on one more round, the
policies the benchmark protocol's previous version trained and validated); Gymnasium 1.x loads no entry-point
plugins, so ``gym.make("DataMixing-v0")`` works after ``import mixing_gym`` and ``gym.make("mixing_gym:DataMixing-v0")``
works anywhere, subprocess workers included. The heavy modules load only when an env is made.
:class:`MixingLayout` (``MixingLayout.of(env)``) is what an env's consumers read: its domains, its benchmarks and
what each measures, its base scores and MDP settings.
:func:`get_normalized_score` puts a final score on the D4RL-style scale (0 = uniform, 100 = the search's best).
"""

import gymnasium as gym

from mixing_gym.layout import BenchmarkSpec, MixingLayout, Scores
from mixing_gym.normalized_scores import get_normalized_score
from mixing_gym.reference import SURROGATE_VERSIONS

__version__ = "0.1.0"
__all__ = ["DEFAULT_ENV_ID", "REAL_ENV_IDS", "BenchmarkSpec", "MixingLayout", "Scores", "get_normalized_score"]

#: The envs that train a real proxy, and the one the command line, the harness and the collector use by default.
REAL_ENV_IDS = ("DataMixing-v1", "DataMixing-v0")
DEFAULT_ENV_ID = "DataMixing-v1"

if "DataMixing-v0" not in gym.registry:
    gym.register(id="DataMixing-v0", entry_point="mixing_gym.envs.data_mixing:DataMixingEnv")
if "DataMixing-v1" not in gym.registry:
    gym.register(id="DataMixing-v1", entry_point="mixing_gym.envs.data_mixing_v1:DataMixingV1Env")
if "DataMixingSurrogate-v0" not in gym.registry:
    gym.register(id="DataMixingSurrogate-v0", entry_point="mixing_gym.envs.surrogate:DataMixingSurrogateEnv",
                 vector_entry_point="mixing_gym.envs.surrogate:DataMixingSurrogateVectorEnv")
for _version in SURROGATE_VERSIONS:  # each version's thin subclasses in mixing_gym.envs.surrogate
    if f"DataMixingSurrogate-v{_version}" not in gym.registry:
        gym.register(id=f"DataMixingSurrogate-v{_version}",
                     entry_point=f"mixing_gym.envs.surrogate:DataMixingSurrogateV{_version}Env",
                     vector_entry_point=f"mixing_gym.envs.surrogate:DataMixingSurrogateV{_version}VectorEnv")
