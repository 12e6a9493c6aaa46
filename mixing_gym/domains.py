"""Domain spaces: the named text domains a mixture re-weights, each in the source or the target field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from mixing_gym.layout import FIELDS, field_mixture
from mixing_gym.sources import (
    CorpusSource,
    DialogueSource,
    HFDatasetSource,
    LicenseSource,
    NewsSource,
    ProblemSource,
    ReasoningGymSource,
    ScriptureSource,
    StdlibCodeSource,
    StdlibDocsSource,
    TextSource,
    WikipediaSource,
)

#: Built-in text sources by domain name. A domain's field is set by the space that uses it:
#: ``stdlib_code`` is source-field text in the ``math`` space and target-field text in ``code``.
BUILTIN_SOURCES: dict[str, TextSource] = {
    "stdlib_code": StdlibCodeSource(),
    "stdlib_tests": StdlibCodeSource(tests=True),
    "stdlib_docs": StdlibDocsSource(),
    "wikipedia": WikipediaSource(),
    "news": NewsSource(),
    "licenses": LicenseSource(),
    "scripture": ScriptureSource(),
    "dialogue": DialogueSource(),
    "math_arithmetic": ReasoningGymSource(("basic_arithmetic", "chain_sum")),
    "math_word_problems": ReasoningGymSource(("gsm_symbolic",)),
    "math_equations": ReasoningGymSource(("simple_equations",)),
    "math_fractions": ReasoningGymSource(("fraction_simplification",)),
    "math_number_theory": ReasoningGymSource(("gcd", "lcm", "prime_factorization")),
}


@dataclass(frozen=True)
class Domain:
    """One domain of a space.

    Args:
        name: unique name; the key of its shards and benchmarks.
        field: ``"source"`` (the original capabilities) or ``"target"`` (the field being adapted to).
        source: where its text comes from.
    """

    name: str
    field: str
    source: TextSource

    def __post_init__(self) -> None:
        if self.field not in FIELDS:
            raise ValueError(f"Domain {self.name!r} has field {self.field!r}; use one of {FIELDS}.")
        if not isinstance(self.source, (CorpusSource, ProblemSource)):
            raise TypeError(f"Domain {self.name!r}: source must be a CorpusSource or ProblemSource.")


class DomainSpace:
    """The K domains a mixture is defined over, in a fixed order.

    Args:
        name: the space's name (``"math"``, ``"code"`` or a user's).
        domains: the domains, source and target fields both present.
        target_field: label of the target field (``"math"``, ``"code"``, ...).
        benchmarks: extra field benchmarks beyond the per-domain ones (``"humaneval"`` for code).
    """

    def __init__(self, name: str, domains: Sequence[Domain], target_field: str, benchmarks: Sequence[str] = ()):
        names = [domain.name for domain in domains]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Domain space {name!r} lists {duplicates} more than once; domain names must be unique.")
        for required in FIELDS:
            if not any(domain.field == required for domain in domains):
                raise ValueError(f"Domain space {name!r} has no {required}-field domain; it needs both fields.")
        self.name = name
        self.domains = tuple(domains)
        self.target_field = target_field
        self.benchmarks = tuple(benchmarks)

    def __repr__(self) -> str:
        return f"DomainSpace({self.name!r}, K={len(self)}, source={self.source_names}, target={self.target_names})"

    def __len__(self) -> int:
        return len(self.domains)

    @property
    def names(self) -> list[str]:
        return [domain.name for domain in self.domains]

    @property
    def fields(self) -> list[str]:
        return [domain.field for domain in self.domains]

    @property
    def source_names(self) -> list[str]:
        return [d.name for d in self.domains if d.field == "source"]

    @property
    def target_names(self) -> list[str]:
        return [d.name for d in self.domains if d.field == "target"]

    @property
    def target_mask(self) -> np.ndarray:
        return np.array([field == "target" for field in self.fields])

    def describe(self) -> dict:
        """JSON identity of the space (names, fields and sources) for cache fingerprints."""
        return {
            "name": self.name,
            "target_field": self.target_field,
            "benchmarks": list(self.benchmarks),
            "domains": [{"name": d.name, "field": d.field, "source": d.source.describe()} for d in self.domains],
        }

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"Unknown domain {name!r} in space {self.name!r}; known domains: {self.names}.") from None

    def mixture(self, weights: Mapping[str, float] | Sequence[float] | np.ndarray) -> np.ndarray:
        """Validate ``weights`` (a vector of length K, or ``{domain: weight}``) and return it as float64.

        Raises ``ValueError`` naming the problem for a wrong length, NaN or infinite, negative weights,
        or weights that do not sum to 1; ``KeyError`` for an unknown domain name.
        """
        if isinstance(weights, Mapping):
            vector = np.zeros(len(self))
            for name, weight in weights.items():
                vector[self.index(name)] = weight
        else:
            vector = np.asarray(weights, dtype=np.float64)
        if vector.shape != (len(self),):
            raise ValueError(
                f"Mixture has shape {vector.shape}; space {self.name!r} has {len(self)} domains {self.names}, "
                f"so pass a vector of shape ({len(self)},)."
            )
        if not np.all(np.isfinite(vector)):
            raise ValueError(f"Mixture {vector.tolist()} contains NaN or infinite weights; pass finite weights.")
        if np.any(vector < 0):
            raise ValueError(f"Mixture {vector.tolist()} has negative weights; weights must be >= 0.")
        if abs(vector.sum() - 1.0) > 1e-4:
            raise ValueError(
                f"Mixture weights sum to {vector.sum():.6g}, not 1; normalise them (w / w.sum())."
            )
        return vector / vector.sum()

    def field_mixture(self, target_share: float) -> np.ndarray:
        """Uniform within each field, ``target_share`` of the tokens in the target field."""
        return field_mixture(self.target_mask, target_share)

    def subspace(self, field: str) -> list[Domain]:
        return [d for d in self.domains if d.field == field]

    # ----------------------------------------------------------------------------------------
    # Construction

    @classmethod
    def from_config(cls, config: Mapping | str | Path) -> DomainSpace:
        """Build a space from a dict or a YAML file.

        Each domain entry names a built-in source (``{name: wikipedia, field: source}``) or declares a
        Hugging Face dataset (``{name: my_corpus, field: target, hf: {path: json, data_files: [a.jsonl]}}``).
        """
        if isinstance(config, (str, Path)):
            config = yaml.safe_load(Path(config).read_text())
        domains = []
        for entry in config["domains"]:
            name, field = entry["name"], entry.get("field", "source")
            if "hf" in entry:
                options = dict(entry["hf"])
                if isinstance(options.get("data_files"), (list, tuple)):
                    options["data_files"] = tuple(options["data_files"])
                elif isinstance(options.get("data_files"), str):
                    options["data_files"] = (options["data_files"],)
                source: TextSource = HFDatasetSource(**options)
            elif name in BUILTIN_SOURCES:
                source = BUILTIN_SOURCES[name]
            else:
                raise KeyError(
                    f"Unknown domain {name!r}: not a built-in source ({sorted(BUILTIN_SOURCES)}) and no 'hf' "
                    "entry declaring a Hugging Face dataset."
                )
            domains.append(Domain(name, field, source))
        return cls(config.get("name", "custom"), domains, config.get("target_field", "custom"),
                   config.get("benchmarks", ()))


def _space(name: str, source: Sequence[str], target: Sequence[str], target_field: str,
           benchmarks: Sequence[str] = ()) -> DomainSpace:
    domains = [Domain(n, "source", BUILTIN_SOURCES[n]) for n in source]
    domains += [Domain(n, "target", BUILTIN_SOURCES[n]) for n in target]
    return DomainSpace(name, domains, target_field, benchmarks)


MATH_TARGET = ["math_arithmetic", "math_word_problems", "math_equations", "math_fractions", "math_number_theory"]

BUILTIN_SPACES = {
    # The paper's setting: general text as the source field, math as the target field.
    "math": lambda: _space(
        "math", ["stdlib_code", "stdlib_docs", "wikipedia", "news", "licenses", "scripture"], MATH_TARGET, "math"
    ),
    # Transfer to code generation: prose as the source field, Python code as the target field.
    "code": lambda: _space(
        "code", ["stdlib_docs", "wikipedia", "news", "licenses", "scripture", "dialogue"],
        ["stdlib_code", "stdlib_tests"], "code", benchmarks=("humaneval",)
    ),
}


def get_domain_space(space: str | DomainSpace | Mapping | Path) -> DomainSpace:
    """A built-in space by name, a :class:`DomainSpace`, a config dict, or a YAML file path."""
    if isinstance(space, DomainSpace):
        return space
    if isinstance(space, Mapping) or (isinstance(space, (str, Path)) and str(space).endswith((".yaml", ".yml"))):
        return DomainSpace.from_config(space)
    if space not in BUILTIN_SPACES:
        raise KeyError(f"Unknown domain space {space!r}; built-in spaces: {sorted(BUILTIN_SPACES)} "
                       "(or pass a DomainSpace, a config dict or a YAML file).")
    return BUILTIN_SPACES[space]()
