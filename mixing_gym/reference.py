"""The reference artefacts shipped in the package: the trajectories of ``DataMixing-v1`` on ``small``, of its math
field (the default) and of its code field, and the surrogates ``DataMixingSurrogate-v1`` steps by default, one
fit on each (``gym.make("DataMixingSurrogate-v1", target_field="code")`` takes the code one).

The trajectories are a Minari dataset folder (:mod:`mixing_gym.trajectories`);
:func:`mixing_gym.trajectories.install_reference_dataset` (``mixing-gym install-dataset``) copies them into
Minari's datasets folder with its reference scores, so that ``minari.load_dataset`` reads them offline.

A reference surrogate is a :class:`~mixing_gym.surrogate.SurrogateModel` folder (``surrogate.json`` and
``arrays.npz``: no pickle) with a data card, ``card.json``: how its trajectories were collected and how
many, how it was fit, its fidelity on held-out episodes, its version. ``experiments/reference_surrogate``
writes both from the committed trajectories, so the shipped files can be rebuilt and checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

#: The folder of the reference artefacts inside the installed package.
REFERENCE_DIR = Path(str(files("mixing_gym") / "reference"))
#: The 128 ``DataMixing-v1`` ``small`` trajectories of the claim issue (their collection command: the surrogate's
#: card, docs/results/reference_surrogate.md).
REFERENCE_TRAJECTORIES = REFERENCE_DIR / "trajectories-v1-small"
#: 128 more of the code field (``target_field="code"``, domain space ``code-v1``), collected with the same plan.
REFERENCE_CODE_TRAJECTORIES = REFERENCE_DIR / "trajectories-code-v1-small"


def transfer_trajectories(space: str) -> Path:
    """The folder of the 64 ``small`` trajectories of one further training space of the transfer agent
    (``mixing_gym.domains.TRANSFER_TRAINING_SPACES``), collected with the reference trajectories' plan
    (``experiments/transfer_v1/study.py collect``).

    Args:
        space: the space's name.
    """
    return REFERENCE_DIR / f"trajectories-{space}-small"


def rule_episodes(space: str) -> Path:
    """The folder of the ``small`` episodes of random mixing rules over the domains' descriptors (each field's domains
    weighted by a softmax of their descriptors: DSIR's mixture and its opposites among them) on one training space of
    the transfer agent, ``math-v1`` or one of ``mixing_gym.domains.TRANSFER_TRAINING_SPACES``
    (``experiments/transfer_v1/study.py collect --rules``): where agents that know domains by what they hold go, and
    where the reference plan's episodes seldom do.

    Args:
        space: the space's name.
    """
    return REFERENCE_DIR / f"rule-episodes-{space}-small"


@dataclass(frozen=True)
class ReferenceDataset:
    """A reference trajectory dataset, by the Minari id it installs under.

    Args:
        folder: the dataset folder in the package.
        env_id: the env its episodes ran on, whose normalised scores (:mod:`mixing_gym.normalized_scores`) give its
            ``ref_min_score`` and ``ref_max_score``.
        preset: the proxy preset of its episodes.
        target_field: the env's target field in its episodes (``"math"``, ``"code"``).
    """

    folder: Path
    env_id: str
    preset: str
    target_field: str


#: The reference datasets by Minari dataset id.
REFERENCE_DATASETS = {
    "mixing-gym/v1-small-v0": ReferenceDataset(REFERENCE_TRAJECTORIES, "DataMixing-v1", "small", "math"),
    "mixing-gym/v1-code-small-v0": ReferenceDataset(REFERENCE_CODE_TRAJECTORIES, "DataMixing-v1", "small", "code"),
}


@dataclass(frozen=True)
class ReferenceSurrogate:
    """A reference surrogate and the reference dataset it was fit on.

    Args:
        folder: the :class:`~mixing_gym.surrogate.SurrogateModel` folder in the package, with its ``card.json``.
        dataset_id: the key of its trajectories in :data:`REFERENCE_DATASETS`.
    """

    folder: Path
    dataset_id: str

    @property
    def trajectories(self) -> Path:
        """The folder of the trajectories it was fit on."""
        return REFERENCE_DATASETS[self.dataset_id].folder


#: The versions of the reference surrogates. v1 is fit on the reference trajectories alone; each later one is the same
#: fit on the real episodes of one more round of trained policies too (:func:`policy_episodes_folder`), written with
#: its penalty (``card.json``'s ``penalty``, the env's default) by ``experiments/surrogate_aggregation``: v2 on rounds
#: 0 to 2 (policies trained on the earlier rounds' surrogates), v3 on round 3 too (the policies protocol 2 validated,
#: trained on v2 under its penalty), v4 on round 4 (protocol 3's), v5 on round 5 (protocol 4's), v6 on round 6
#: (protocol 5's); from v4 on, the penalty is chosen on the protocol's own rounds.
SURROGATE_VERSIONS = (1, 2, 3, 4, 5, 6)
#: The surrogate env the benchmark protocol trains on by default (``agents.benchmark.BenchmarkProtocol``): the version
#: whose run held best on the real env (``docs/benchmark.md`` says how each version was judged).
DEFAULT_BENCHMARK_SURROGATE = "DataMixingSurrogate-v6"
#: Per target field: its surrogates' folder prefix and the key of its trajectories in :data:`REFERENCE_DATASETS`.
_FIELD_SURROGATES = {"math": ("", "mixing-gym/v1-small-v0"), "code": ("code-", "mixing-gym/v1-code-small-v0")}
#: The reference surrogates by ``(surrogate env id, target field of the DataMixing-v1 episodes they were fit on)``.
REFERENCE_SURROGATES = {
    (f"DataMixingSurrogate-v{version}", field):
        ReferenceSurrogate(REFERENCE_DIR / f"surrogate-{prefix}v{version}-small", dataset_id)
    for version in SURROGATE_VERSIONS for field, (prefix, dataset_id) in _FIELD_SURROGATES.items()
}
#: How to make a surrogate of a field that has no reference one, for error messages.
_FIT_YOUR_OWN = ("collect its trajectories (mixing-gym collect --env DataMixing-v1 --target-field {field} --preset "
                "small --episodes 128 --output runs/trajectories-{field}), fit a model on them "
                "(SurrogateModel.fit(load_trajectories('runs/trajectories-{field}'), ensemble=5).save("
                "'runs/surrogate-{field}')) and step it with gym.make('DataMixingSurrogate-v1', "
                "surrogate='runs/surrogate-{field}')")
CARD_FILE = "card.json"


def reference_surrogate(env_id: str = "DataMixingSurrogate-v1", target_field: str = "math") -> ReferenceSurrogate:
    """``env_id``'s reference surrogate of ``target_field``; an error names the envs and fields that have one, and
    says how to fit a surrogate of a field that has none.

    Args:
        env_id: the surrogate env, with or without the ``mixing_gym:`` prefix.
        target_field: the target field of the ``DataMixing-v1`` episodes it was fit on (``"math"``, ``"code"``).
    """
    env_id = env_id.removeprefix("mixing_gym:")
    fields = sorted(field for env, field in REFERENCE_SURROGATES if env == env_id)
    if not fields:
        raise KeyError(f"{env_id} ships no reference surrogate; {sorted({env for env, _ in REFERENCE_SURROGATES})} do.")
    if (env_id, target_field) not in REFERENCE_SURROGATES:
        raise KeyError(f"No reference surrogate of the {target_field!r} field exists: {env_id} ships ones of "
                       f"{fields}. To make one, " + _FIT_YOUR_OWN.format(field=target_field) + ".")
    return REFERENCE_SURROGATES[env_id, target_field]


def reference_surrogate_path(env_id: str = "DataMixingSurrogate-v1", target_field: str = "math") -> Path:
    """The folder of ``env_id``'s reference surrogate of ``target_field`` (:func:`reference_surrogate`)."""
    return reference_surrogate(env_id, target_field).folder


def reference_card(env_id: str = "DataMixingSurrogate-v1", target_field: str = "math") -> dict[str, Any]:
    """The data card of ``env_id``'s reference surrogate of ``target_field`` (the module's docstring says what it
    holds)."""
    return json.loads((reference_surrogate_path(env_id, target_field) / CARD_FILE).read_text())


def policy_episodes_folder(target_field: str = "math") -> Path:
    """The folder of the real ``DataMixing-v1`` ``small`` episodes of trained policies of ``target_field`` that
    ``DataMixingSurrogate-v2``'s to ``-v6``'s surrogates are fit on besides the reference trajectories: one Minari
    dataset a round of data aggregation (``round0``, ``round1``, ...).

    Args:
        target_field: ``"math"`` or ``"code"``.
    """
    return REFERENCE_DIR / ("policy-episodes-v1-small" if target_field == "math" else
                            f"policy-episodes-{target_field}-v1-small")


def reference_penalty(env_id: str = "DataMixingSurrogate-v2", target_field: str = "math") -> float:
    """The penalty ``env_id`` applies by default with its reference surrogate of ``target_field``: the weight its card
    records (chosen on held-out policies), 0 where it records none (``DataMixingSurrogate-v1``).

    Args:
        env_id: the surrogate env.
        target_field: ``"math"`` or ``"code"``.
    """
    return float(reference_card(env_id, target_field).get("penalty", 0.0))
