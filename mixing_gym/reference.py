"""The reference artefacts shipped in the package: the surrogate ``DataMixingSurrogate-v1`` steps by default.

A reference surrogate is a :class:`~mixing_gym.surrogate.SurrogateModel` folder (``surrogate.json`` and
``arrays.npz``: no pickle) with a data card, ``card.json``: how its trajectories were collected and how
many, how it was fit, its fidelity on held-out episodes, its version. ``benchmarks/reference_surrogate.py``
writes both from the committed trajectories, so the shipped files can be rebuilt and checked.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

#: The folder of the reference artefacts inside the installed package.
REFERENCE_DIR = Path(str(files("mixing_gym") / "reference"))
#: Each surrogate env's reference surrogate folder. The code field has none: no ``DataMixing-v1`` code-field
#: trajectories have been collected.
REFERENCE_SURROGATES = {"DataMixingSurrogate-v1": REFERENCE_DIR / "surrogate-v1-small"}
CARD_FILE = "card.json"


def reference_surrogate_path(env_id: str = "DataMixingSurrogate-v1") -> Path:
    """The folder of ``env_id``'s reference surrogate; an error names the envs that have one."""
    env_id = env_id.removeprefix("mixing_gym:")
    if env_id not in REFERENCE_SURROGATES:
        raise KeyError(f"{env_id} ships no reference surrogate; {sorted(REFERENCE_SURROGATES)} do.")
    return REFERENCE_SURROGATES[env_id]


def reference_card(env_id: str = "DataMixingSurrogate-v1") -> dict[str, Any]:
    """The data card of ``env_id``'s reference surrogate (see the module's docstring for what it holds)."""
    return json.loads((reference_surrogate_path(env_id) / CARD_FILE).read_text())
