"""Domain spaces: the named text domains a mixture re-weights, each in the source or the target field."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mixing_gym.layout import FIELDS, field_mixture
from mixing_gym.sources import (
    CorpusSource,
    DialogueSource,
    HFDatasetSource,
    LicenseSource,
    NewsSource,
    PackageCodeSource,
    ProblemSource,
    ReasoningGymSource,
    ScriptureSource,
    StdlibCodeSource,
    StdlibDocsSource,
    TextSource,
    WikipediaSource,
)
from mixing_gym.topics import TopicSource

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
    # Code of installed packages (the code-v1 space's target field): third-party libraries in styles of their
    # own, their tests, and configuration files rather than Python.
    "networkx_code": PackageCodeSource("networkx"),
    "networkx_tests": PackageCodeSource("networkx", tests=True),
    "sympy_code": PackageCodeSource("sympy"),
    "reasoning_gym_code": PackageCodeSource("reasoning_gym"),
    "lm_eval_configs": PackageCodeSource("lm_eval", suffix=".yaml"),
}

#: How many topics each corpus of the ``math-v1`` space is clustered into; 1 keeps the corpus whole.
#: Chosen so that every topic holds well over 40K characters of train text (``experiments/domain_card``):
#: the standard library's docstrings always split off a cluster of a few thousand characters (the
#: identical docstrings of its generated codecs), so they stay whole, as does the small dialogue corpus.
MATH_V1_TOPICS = {"stdlib_code": 5, "stdlib_docs": 1, "wikipedia": 4, "news": 2, "scripture": 2, "licenses": 2,
                  "dialogue": 1}
#: The GSM templates the word problems of ``math-v1`` leave out (every 9th template reasoning-gym draws
#: from), so that a benchmark of unseen templates can be built from them
#: (``ReasoningGymSource.heldout_template_problems``). Fixed here, not computed, to stay the same whatever
#: reasoning-gym adds.
MATH_V1_HELDOUT_TEMPLATES = (4, 13, 22, 31, 43, 52, 62, 73, 88)
#: The target field of ``math-v1``: one reasoning-gym generator per domain, named ``math_<generator>``, with
#: the config options that some need. Besides the families that teach math (v0's, split apart, and number
#: sequences) some help math benchmarks little (letter counting, spelling backwards, sorting, base
#: conversion), as the subsets of real math corpora do.
MATH_V1_GENERATORS: dict[str, tuple[tuple[str, object], ...]] = {
    "basic_arithmetic": (),
    "chain_sum": (),
    "gsm_symbolic": (),
    "simple_equations": (),
    "fraction_simplification": (),
    "gcd": (),
    # The defaults (numbers up to 100 and 1,000) have too few distinct problems: after 2M characters of train
    # problems, 141 unseen ones were left to hold out for lcm and none for prime_factorization.
    "lcm": (("max_value", 1_000),),
    "prime_factorization": (("max_value", 100_000),),
    # Rules square the terms repeatedly: past 5 terms a few sequences grow to numbers of millions of digits
    # and take seconds each to generate (one of the default 8 terms took 14 s).
    "number_sequence": (("max_terms", 5),),
    "letter_counting": (),
    "spell_backward": (),
    "number_sorting": (),
    "base_conversion": (),
}


def _topic_sources(topics: Mapping[str, int]) -> dict[str, TextSource]:
    """The topic domains of built-in corpora by domain name: ``<corpus>_<topic>`` for a clustered corpus, the
    corpus's own name when it stays whole.

    Args:
        topics: how many topics each corpus (a :data:`BUILTIN_SOURCES` name) is clustered into; 1 keeps it whole.
    """
    sources: dict[str, TextSource] = {}
    for corpus, count in topics.items():
        base = BUILTIN_SOURCES[corpus]
        if count == 1:
            sources[corpus] = base
        else:
            sources.update({f"{corpus}_{topic}": TopicSource(base, count, topic) for topic in range(count)})
    return sources


def _math_v1_sources() -> dict[str, TextSource]:
    """The sources of ``math-v1`` by domain name: the topics of :data:`MATH_V1_TOPICS`
    (:func:`_topic_sources`), ``math_<generator>`` for a problem family."""
    sources = _topic_sources(MATH_V1_TOPICS)
    for generator, options in MATH_V1_GENERATORS.items():
        held_out = MATH_V1_HELDOUT_TEMPLATES if generator == "gsm_symbolic" else ()
        sources[f"math_{generator}"] = ReasoningGymSource((generator,), options=options, exclude_templates=held_out)
    return sources


MATH_V1_SOURCES = _math_v1_sources()
# The whole corpora among them are v0's own sources, so this adds the topics and the problem families only.
BUILTIN_SOURCES.update(MATH_V1_SOURCES)

#: The source field of ``code-v1``: ``math-v1``'s clustered prose corpora, without the standard library's code
#: (which is code-v1's target field).
CODE_V1_SOURCE_TOPICS = {corpus: topics for corpus, topics in MATH_V1_TOPICS.items() if corpus != "stdlib_code"}
#: The target field of ``code-v1``: code corpora and how many topics each is clustered into (1 keeps it whole),
#: of uneven value for its code tasks, as the subsets of a real code corpus are: the standard library's modules
#: in ``math-v1``'s 5 topics (general library code, but also a GUI toolkit, codec boilerplate, Unicode tables
#: and 2to3 fixers), its test suite, two third-party libraries (networkx's graph algorithms and tests, sympy's
#: computer algebra in 3 topics), reasoning-gym's puzzle generators, and lm-eval's YAML task configs, which are
#: not Python at all. sympy's topics each hold over 2M characters of train text (``experiments/domain_card``).
CODE_V1_TOPICS = {"stdlib_code": 5, "stdlib_tests": 1, "networkx_code": 1, "networkx_tests": 1, "sympy_code": 3,
                  "reasoning_gym_code": 1, "lm_eval_configs": 1}
#: The sources of ``code-v1`` by domain name, source field first.
CODE_V1_SOURCES = {**_topic_sources(CODE_V1_SOURCE_TOPICS), **_topic_sources(CODE_V1_TOPICS)}
BUILTIN_SOURCES.update(CODE_V1_SOURCES)

#: The further training spaces of the transfer agent: ``math-v1``'s sources cut another way, so that an agent
#: trained on several of them cannot know a domain by its index or its name. Each leaves out what the headline's
#: transfer settings hold out: the whole corpora of ``math-v1-whole-corpora`` (setting (b); a corpus is whole here
#: only where ``math-v1`` keeps it whole too), the code field, and the installed packages' code and the standard
#: library's tests (setting (f)'s source field). Other topic clusterings of the source corpora; their topics are
#: named ``<corpus>_<topic>of<count>``, so that they never take the name of one of ``math-v1``'s topics, which are
#: other clusters of the same text.
RECLUSTERED_TOPICS = {"stdlib_code": 3, "stdlib_docs": 1, "wikipedia": 2, "news": 3, "scripture": 3, "licenses": 3,
                      "dialogue": 1}
SUBSET_TOPICS = {"stdlib_code": 2, "stdlib_docs": 1, "wikipedia": 3, "news": 2, "scripture": 2, "licenses": 2,
                 "dialogue": 1}
#: Problem families merged into one domain each (generators that share no config option), in ``math-v1``'s order;
#: a merged domain is named by its generators, so that a task's ``draws_on`` prefix still finds its family.
MERGED_FAMILIES = (("basic_arithmetic", "chain_sum"), ("gsm_symbolic",), ("simple_equations",),
                   ("gcd", "fraction_simplification"), ("lcm",), ("prime_factorization",), ("number_sequence",),
                   ("letter_counting", "spell_backward"), ("number_sorting", "base_conversion"))
#: The 8 of ``math-v1``'s 13 problem families that the subset space keeps: every family a math task draws on,
#: and families of each kind that teach math little.
FAMILY_SUBSET = ("basic_arithmetic", "gsm_symbolic", "simple_equations", "gcd", "prime_factorization",
                 "number_sequence", "spell_backward", "base_conversion")


def _reclustered_sources(topics: Mapping[str, int]) -> dict[str, TextSource]:
    """:func:`_topic_sources` of ``topics`` with each clustered corpus's topics named ``<corpus>_<topic>of<count>``."""
    return {f"{name}of{source.topics}" if isinstance(source, TopicSource) else name: source
            for name, source in _topic_sources(topics).items()}


def _family_sources(families: Sequence[Sequence[str]]) -> dict[str, TextSource]:
    """``math_<generator>_<generator>...`` for each group of ``math-v1``'s problem families (one source each)."""
    return {"_".join(("math", *group)): MATH_V1_SOURCES[f"math_{group[0]}"] if len(group) == 1 else
            ReasoningGymSource(tuple(group), options=sum((MATH_V1_GENERATORS[g] for g in group), ()))
            for group in families}


TRANSFER_TRAINING_SOURCES = {**_reclustered_sources(RECLUSTERED_TOPICS), **_reclustered_sources(SUBSET_TOPICS),
                             **_family_sources(MERGED_FAMILIES)}
BUILTIN_SOURCES.update(TRANSFER_TRAINING_SOURCES)

#: The keys of a domain space config and of one domain entry in it (the README's Domain spaces section).
SPACE_KEYS = ("name", "target_field", "domains", "benchmarks", "eval_chars", "task_items")
DOMAIN_KEYS = ("name", "field", "hf")
HF_KEYS = tuple(f.name for f in fields(HFDatasetSource))
FORMAT_HINT = "see the README's Domain spaces section for the format"


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
        eval_chars: at most this many characters of held-out text per domain are scored for its bits per byte
            (a cap on the data config's ``eval_chars``: a space of many domains scores less of each, so that
            scoring stays a small part of a step); ``None``: the data config's.
        task_items: at most this many items per task benchmark (a cap on the data config's ``mc_items``).
    """

    def __init__(self, name: str, domains: Sequence[Domain], target_field: str, benchmarks: Sequence[str] = (),
                 eval_chars: int | None = None, task_items: int | None = None):
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
        for knob, value in (("eval_chars", eval_chars), ("task_items", task_items)):
            if value is not None and value < 1:
                raise ValueError(f"Domain space {name!r}: {knob} must be a positive whole number or None.")
        self.eval_chars = eval_chars
        self.task_items = task_items

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

        Args:
            config: the config as a mapping, or the path of a YAML file holding one.

        Raises ``FileNotFoundError`` for a missing file, ``ValueError`` naming the file (and for a YAML
        syntax error its line and column) and the faulty key, and ``KeyError`` for a domain that is neither
        built in nor declared with ``hf``.
        """
        if isinstance(config, (str, Path)):
            path = Path(config)
            return cls._from_parsed(_read_space_file(path), f"Domain space file {path}")
        return cls._from_parsed(config, "Domain space config")

    @classmethod
    def _from_parsed(cls, config: Any, origin: str) -> DomainSpace:
        """The space of a parsed config; every error names ``origin`` (the file, or that it was a dict).

        Args:
            config: what the YAML file held, or the dict given.
            origin: how errors name the config.
        """
        if not isinstance(config, Mapping):
            raise _config_error(origin, f"expected a mapping with the keys {list(SPACE_KEYS)}, got {_shown(config)}")
        unknown = sorted(set(config) - set(SPACE_KEYS), key=str)
        if unknown:
            raise _config_error(origin, f"unknown keys {unknown}; a space has the keys {list(SPACE_KEYS)}")
        for key in ("name", "target_field"):
            if key in config and not isinstance(config[key], str):
                raise _config_error(origin, f"{key!r} must be a string, got {_shown(config[key])}")
        benchmarks = config.get("benchmarks", ())
        for knob in ("eval_chars", "task_items"):
            value = config.get(knob)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise _config_error(origin, f"{knob!r} must be a whole number, got {_shown(value)}")
        if not _is_list(benchmarks) or not all(isinstance(b, str) for b in benchmarks):
            raise _config_error(origin, f"'benchmarks' must be a list of benchmark names, got {_shown(benchmarks)}")
        if "domains" not in config:
            raise _config_error(origin, "the required key 'domains' is missing")
        if not _is_list(config["domains"]) or not config["domains"]:
            raise _config_error(origin, "'domains' must be a non-empty list of {name, field} mappings, "
                                        f"got {_shown(config['domains'])}")
        entries = [_domain_entry(index, entry, origin) for index, entry in enumerate(config["domains"])]
        try:  # a bad field, a duplicate name or a missing field: the message is the space's, the file is ours
            domains = [Domain(name, field, source) for name, field, source in entries]
            return cls(config.get("name", "custom"), domains, config.get("target_field", "custom"), benchmarks,
                       config.get("eval_chars"), config.get("task_items"))
        except ValueError as error:
            raise ValueError(f"{origin}: {error}") from error


def _config_error(origin: str, message: str) -> ValueError:
    """The error for a malformed space config: where, what, and where the format is described."""
    return ValueError(f"{origin}: {message}; {FORMAT_HINT}.")


def _shown(value: Any) -> str:
    """A short description of a config value for an error message."""
    return "nothing (an empty value)" if value is None else f"{type(value).__name__} {reprlib.repr(value)}"


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _read_space_file(path: Path) -> Any:
    """The parsed YAML of a domain space file; a syntax error raises ``ValueError`` with its line and column."""
    if not path.is_file():
        raise FileNotFoundError(f"Domain space file {path} does not exist (relative paths start at {Path.cwd()}).")
    try:
        with path.open("rb") as stream:
            return yaml.safe_load(stream)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        # A scanner or parser error says what it found; other YAML errors (bad bytes) only have their text.
        detail = getattr(error, "problem", None) or " ".join(str(error).split())
        context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context:
            detail += f" ({context}" + (f" that starts at line {start.line + 1}, column {start.column + 1}"
                                        if start else "") + ")"
        raise ValueError(f"Domain space file {where}: not valid YAML: {detail}. A domain space file is a YAML "
                         f"mapping with a name, a target_field and a list of domains; {FORMAT_HINT}.") from error


def _domain_entry(index: int, entry: Any, origin: str) -> tuple[str, str, TextSource]:
    """The name, field and text source of entry ``index`` of a config's ``domains``.

    Args:
        index: the entry's position, to name it in errors.
        entry: the entry as parsed.
        origin: how errors name the config.
    """
    label = f"domains[{index}]"
    if not isinstance(entry, Mapping):
        raise _config_error(origin, f"{label} must be a mapping like {{name: wikipedia, field: source}}, "
                                    f"got {_shown(entry)}")
    unknown = sorted(set(entry) - set(DOMAIN_KEYS), key=str)
    if unknown:
        raise _config_error(origin, f"{label} has unknown keys {unknown}; a domain has the keys {list(DOMAIN_KEYS)}")
    if not isinstance(entry.get("name"), str):
        raise _config_error(origin, f"{label} needs a 'name' string, got {_shown(entry.get('name'))}")
    name, field = entry["name"], entry.get("field", "source")
    label = f"{label} ({name!r})"
    if not isinstance(field, str):
        raise _config_error(origin, f"{label}: 'field' must be 'source' or 'target', got {_shown(field)}")
    if "hf" in entry:
        if not isinstance(entry["hf"], Mapping) or "path" not in entry["hf"]:
            raise _config_error(origin, f"{label}: 'hf' must be a mapping with at least a 'path', "
                                        f"got {_shown(entry['hf'])}")
        options = dict(entry["hf"])
        unknown = sorted(set(options) - set(HF_KEYS), key=str)
        if unknown:
            raise _config_error(origin, f"{label}: 'hf' has unknown keys {unknown}; it takes {list(HF_KEYS)}")
        # Tuples keep the source hashable and its description stable.
        if _is_list(options.get("data_files")):
            options["data_files"] = tuple(options["data_files"])
        elif isinstance(options.get("data_files"), str):
            options["data_files"] = (options["data_files"],)
        return name, field, HFDatasetSource(**options)
    if name not in BUILTIN_SOURCES:
        raise KeyError(f"{origin}: Unknown domain {name!r} (domains[{index}]): not a built-in source "
                       f"({sorted(BUILTIN_SOURCES)}) and no 'hf' entry declaring a Hugging Face dataset; "
                       f"{FORMAT_HINT}.")
    return name, field, BUILTIN_SOURCES[name]


def _space(name: str, source: Sequence[str], target: Sequence[str], target_field: str,
           benchmarks: Sequence[str] = (), eval_chars: int | None = None,
           task_items: int | None = None) -> DomainSpace:
    domains = [Domain(n, "source", BUILTIN_SOURCES[n]) for n in source]
    domains += [Domain(n, "target", BUILTIN_SOURCES[n]) for n in target]
    return DomainSpace(name, domains, target_field, benchmarks, eval_chars, task_items)


#: The task benchmarks of ``math-v1`` (:data:`mixing_gym.benchmark_data.TASK_BENCHMARKS`): v1's feedback.
MATH_V1_BENCHMARKS = ("passages", "documentation", "dialogue", "licences", "word_problems", "equations", "decimals")
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
    # The paper's shape (DataMixing-v1): topic domains of the source corpora, as DCLM's are, and separate
    # problem families as the target field, as the subsets of a math corpus are.
    "math-v1": lambda: _space(
        "math-v1", [n for n, s in MATH_V1_SOURCES.items() if not isinstance(s, ReasoningGymSource)],
        [n for n, s in MATH_V1_SOURCES.items() if isinstance(s, ReasoningGymSource)], "math",
        benchmarks=MATH_V1_BENCHMARKS,
        # 500 of v0's 4,000 characters per domain (30 domains' bits per byte are the agent's view, not the
        # reward) and 32 items per task, so that scoring stays under a fifth of a small step
        eval_chars=500, task_items=32,
    ),
    # The headline's unseen domain space, setting (b): math-v1's source corpora whole (7 domains where math-v1 has
    # 17 topic clusters of the same text) beside its 13 problem families, scored as math-v1 is.
    "math-v1-whole-corpora": lambda: _space(
        "math-v1-whole-corpora", list(MATH_V1_TOPICS), [f"math_{generator}" for generator in MATH_V1_GENERATORS],
        "math", benchmarks=MATH_V1_BENCHMARKS, eval_chars=500, task_items=32,  # math-v1's scoring budget
    ),
    # The code field in the same shape: the prose topics of math-v1 as the source field, code corpora of uneven
    # value as the target field; math-v1's source tasks but documentation, whose held-out docstrings are in the
    # code files the target field trains on, and code tasks built from held-out files and HumanEval.
    "code-v1": lambda: _space(
        "code-v1", list(_topic_sources(CODE_V1_SOURCE_TOPICS)), list(_topic_sources(CODE_V1_TOPICS)), "code",
        benchmarks=("passages", "dialogue", "licences", "humaneval_solutions", "function_bodies", "assertions"),
        eval_chars=500, task_items=32,  # math-v1's scoring budget
    ),
    # The further training spaces of the transfer agent (RECLUSTERED_TOPICS and the others above): math-v1's
    # sources clustered, merged and subset another way, scored as math-v1 is.
    "math-v1-reclustered": lambda: _space(
        "math-v1-reclustered", list(_reclustered_sources(RECLUSTERED_TOPICS)),
        [f"math_{generator}" for generator in MATH_V1_GENERATORS], "math",
        benchmarks=MATH_V1_BENCHMARKS, eval_chars=500, task_items=32,
    ),
    "math-v1-merged-families": lambda: _space(
        "math-v1-merged-families", list(_topic_sources(MATH_V1_TOPICS)), list(_family_sources(MERGED_FAMILIES)),
        "math", benchmarks=MATH_V1_BENCHMARKS, eval_chars=500, task_items=32,
    ),
    "math-v1-family-subset": lambda: _space(
        "math-v1-family-subset", list(_reclustered_sources(SUBSET_TOPICS)),
        [f"math_{generator}" for generator in FAMILY_SUBSET], "math",
        benchmarks=MATH_V1_BENCHMARKS, eval_chars=500, task_items=32,
    ),
    # The headline's unseen source field, setting (f): a base model pretrained on another part of the offline
    # corpora, code (the installed packages' code and the standard library's tests, which no transfer training
    # space holds), continually pretrained on math-v1's problem families; the code tasks measure what its source
    # field keeps (a task is a target-field one only where its subject is the space's target field).
    "math-v1-code-source": lambda: _space(
        "math-v1-code-source", list(_topic_sources({corpus: count for corpus, count in CODE_V1_TOPICS.items()
                                                     if corpus != "stdlib_code"})),
        [f"math_{generator}" for generator in MATH_V1_GENERATORS], "math",
        benchmarks=("humaneval_solutions", "function_bodies", "assertions", "word_problems", "equations", "decimals"),
        eval_chars=500, task_items=32,
    ),
}
#: The spaces the transfer agent's trajectories are collected on besides ``math-v1``.
TRANSFER_TRAINING_SPACES = ("math-v1-reclustered", "math-v1-merged-families", "math-v1-family-subset")
#: The built-in spaces that a target field selects in ``DataMixing-v0`` (``target_field=...``), each named by it
#: (``DataMixing-v1`` selects its own: ``math-v1``, ``code-v1``).
FIELD_SPACES = ("math", "code")


def _quoted(names: Iterable[str]) -> str:
    """``'a', 'b' and 'c'``: names for a sentence."""
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def get_domain_space(space: str | DomainSpace | Mapping | Path) -> DomainSpace:
    """A built-in space by name, a :class:`DomainSpace`, a config dict, or a YAML file path.

    Args:
        space: the space; a string ending in ``.yaml`` or ``.yml`` is a file path.
    """
    if isinstance(space, DomainSpace):
        return space
    if isinstance(space, Mapping) or (isinstance(space, (str, Path)) and str(space).endswith((".yaml", ".yml"))):
        return DomainSpace.from_config(space)
    if space not in BUILTIN_SPACES:
        raise KeyError(f"Unknown domain space {space!r}; the built-in spaces are {_quoted(BUILTIN_SPACES)} "
                       f"({_quoted(FIELD_SPACES)} named by their target field, the env's target_field); for another "
                       "space pass a DomainSpace, a config dict or the path of a YAML file, .yaml or .yml (space= in "
                       "gym.make, --space on the command line).")
    return BUILTIN_SPACES[space]()


def target_field_space(target_field: str) -> DomainSpace:
    """The built-in space of a target field: what ``gym.make("DataMixing-v0", target_field=...)`` trains on
    (v1's are ``math-v1`` and ``code-v1``).

    Args:
        target_field: ``"math"`` or ``"code"`` (:data:`FIELD_SPACES`), each the name of its space.

    Raises ``KeyError`` speaking of target fields (not of spaces) for any other name.
    """
    if target_field not in FIELD_SPACES:
        raise KeyError(f"Unknown target_field {target_field!r}; the built-in target fields are "
                       f"{_quoted(FIELD_SPACES)}; for another field pass space=<a DomainSpace, a config dict "
                       "or a YAML path>.")
    return BUILTIN_SPACES[target_field]()
