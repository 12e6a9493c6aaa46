"""Domain descriptors: what each domain of a space holds, computed from its data with no run on the space.

A mixing agent that knows a domain only by its index (or its field) cannot carry what it learned to another domain
space. Descriptors describe a domain by its data instead, so that two spaces' domains compare:

- ``importance/<benchmark>``, one per task benchmark of the space: how much the domain's training text looks like
  the benchmark's items, DSIR-style (Xie et al., 2023, "Data Selection for Language Models via Importance
  Resampling"). Unigrams and bigrams of token ids are hashed into :data:`NGRAM_BUCKETS` buckets; a bag of hashed
  n-grams models each domain's train shard, each benchmark's items (prompt and answer) and the background, the mean
  of the space's domain models. The importance of a domain toward a task is the mean log-likelihood ratio, per
  n-gram of the domain's text, of the task model over the background (in nats): positive where the domain's text is
  more task-like than the space's average text.
- ``train_tokens``: the domain's unique training tokens (the size of its finite data).
- ``base_bpb`` (in a layout only, :func:`with_base_loss`): the base model's held-out bits per byte on the domain, its
  ``mg_bpb_<domain>`` base score.

Raw descriptors name a space's own benchmarks and are in units that hang on its tokenizer and its domains;
:func:`domain_features` turns a layout's into :data:`DOMAIN_FEATURES`, the same few features on every space (each
standardised over the space's domains), which is what an agent that transfers between spaces reads.

``prepare`` computes the data's descriptors once (:func:`compute_descriptors`) and stores them beside the shards as
:data:`DESCRIPTORS_FILE`, checksummed in the manifest (:func:`write_descriptors`, :func:`read_descriptors`); the
real env puts them, with the base loss, in its :class:`~mixing_gym.layout.MixingLayout`
(``layout.domain_descriptors``). :func:`mixing_gym.recorded_layouts.add_descriptors` adds them to a layout recorded
before they existed (a trajectory dataset's or a surrogate's). The computation needs numpy and the standard library
only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mixing_gym.storage import CacheError, atomic_write_json, sha256_file

if TYPE_CHECKING:
    from mixing_gym.layout import BenchmarkSpec, MixingLayout
    from mixing_gym.prepare import PreparedData

#: Buckets of the hashed n-gram models (DSIR's 10,000).
NGRAM_BUCKETS = 10_000
#: The descriptors of a prepared data directory, beside its manifest.
DESCRIPTORS_FILE = "descriptors.json"
#: Version of the descriptors' computation: a prepared directory whose descriptors have another one computes them anew.
DESCRIPTORS_VERSION = 1
#: The manifest's entry recording the descriptors file (its size, checksum and version).
MANIFEST_KEY = "descriptors"
TRAIN_TOKENS = "train_tokens"
BASE_BPB = "base_bpb"
IMPORTANCE_PREFIX = "importance/"
#: The features of :func:`domain_features`, the same on every space: a domain's importance toward the target field's
#: tasks and toward the source field's (the mean and the largest over the field's tasks), its unique training tokens
#: and the base model's loss on it.
DOMAIN_FEATURES = ("target_task_importance_mean", "target_task_importance_max", "source_task_importance_mean",
                   "source_task_importance_max", "log_train_tokens", "base_bpb")


def importance_name(benchmark: str) -> str:
    """The descriptor of a domain's importance toward ``benchmark``.

    Args:
        benchmark: a task benchmark's name in a layout (``mg_task_<name>``).
    """
    return f"{IMPORTANCE_PREFIX}{benchmark}"


# ------------------------------------------------------------------------------------------------ n-gram models


def _mix(keys: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser of ``uint64`` keys: a fixed hash, the same on every platform and in every process
    (Python's ``hash`` of a tuple is not)."""
    keys = keys ^ (keys >> np.uint64(30))
    keys = keys * np.uint64(0xBF58476D1CE4E5B9)  # uint64 arrays wrap around on overflow, as the hash needs
    keys = keys ^ (keys >> np.uint64(27))
    keys = keys * np.uint64(0x94D049BB133111EB)
    return keys ^ (keys >> np.uint64(31))


def hashed_ngram_counts(tokens: np.ndarray, separator: int, buckets: int = NGRAM_BUCKETS) -> np.ndarray:
    """Counts of the hashed unigrams and bigrams of token ids, ``(buckets,)``.

    Args:
        tokens: token ids, documents separated by ``separator`` (a prepared shard's layout).
        separator: the id between documents (EOS): counted in no n-gram, so that no bigram spans two documents.
        buckets: the number of hash buckets.
    """
    ids = np.asarray(tokens).astype(np.uint64)
    inside = ids != separator
    pairs = inside[:-1] & inside[1:]
    # Unigram keys are the ids themselves, bigram keys are above 2**32: the two never share a key.
    bigrams = ((ids[:-1][pairs] + np.uint64(1)) << np.uint64(32)) | ids[1:][pairs]
    keys = np.concatenate([ids[inside], bigrams])
    return np.bincount((_mix(keys) % np.uint64(buckets)).astype(np.int64), minlength=buckets).astype(np.float64)


def importance(domain_counts: np.ndarray, task_counts: np.ndarray) -> np.ndarray:
    """Each domain's importance toward one task, ``(K,)``: the mean log-likelihood ratio, over the hashed n-grams of
    the domain's text, of the task's n-gram model over the background model (in nats).

    The background is the mean of the domains' models, each add-one smoothed, so that every domain weighs the same
    whatever its size. The task's model, from a few thousand n-grams, is smoothed toward the background (a Dirichlet
    prior of one pseudo-count per bucket), so that an n-gram the items lack scores by how common the background finds
    it rather than as impossible.

    Args:
        domain_counts: ``(K, buckets)`` the domains' hashed n-gram counts.
        task_counts: ``(buckets,)`` the task items' counts.
    """
    buckets = domain_counts.shape[1]
    smoothed = (domain_counts + 1.0) / (domain_counts.sum(axis=1, keepdims=True) + buckets)
    background = smoothed.mean(axis=0)
    prior = float(buckets)
    task = (task_counts + prior * background) / (task_counts.sum() + prior)
    empirical = domain_counts / np.maximum(domain_counts.sum(axis=1, keepdims=True), 1.0)
    return empirical @ np.log(task / background)


# ------------------------------------------------------------------------------------------------ a prepared directory


def compute_descriptors(data: PreparedData) -> dict[str, dict[str, float]]:
    """The descriptors of a prepared data directory, domain -> descriptor -> value: each domain's unique train tokens
    and its importance toward each task benchmark of the space (none for a space without task benchmarks).

    Args:
        data: the prepared directory (its train shards, its task items and the tokenizer that made the shards).
    """
    names = data.space.names
    eos = data.tokenizer.eos_token_id
    domain_counts = np.stack([hashed_ngram_counts(data.train_tokens(name), eos) for name in names])
    descriptors = {name: {TRAIN_TOKENS: float(data.train_tokens(name).size)} for name in names}
    tasks = sorted(file for file, role in data.manifest["benchmarks"].items() if role["kind"] == "task")
    for file in tasks:
        rows = [json.loads(line) for line in (data.tasks_dir / f"{file}.jsonl").read_text().splitlines()]
        ids = data.tokenizer([row["prompt"] + row["answer"] for row in rows], add_special_tokens=False)["input_ids"]
        tokens = np.fromiter((t for item in ids for t in (*item, eos)), dtype=np.int64)
        # The benchmark's name as the evaluator gives it (mixing_gym.evaluation.space_benchmarks).
        values = importance(domain_counts, hashed_ngram_counts(tokens, eos))
        for name, value in zip(names, values.tolist()):
            descriptors[name][importance_name(f"mg_{file}")] = value
    return descriptors


def write_descriptors(directory: Path, descriptors: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Write ``descriptors`` as :data:`DESCRIPTORS_FILE` in ``directory``; returns its manifest entry (size, sha256 and
    :data:`DESCRIPTORS_VERSION`).

    Args:
        directory: the prepared data directory.
        descriptors: domain -> descriptor -> value.
    """
    path = directory / DESCRIPTORS_FILE
    atomic_write_json(path, {name: dict(values) for name, values in descriptors.items()})
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path), "version": DESCRIPTORS_VERSION}


def descriptors_problem(directory: Path, manifest: Mapping[str, Any]) -> str | None:
    """What is wrong with the descriptors of a prepared directory (missing, of another version, corrupt), or ``None``.

    Args:
        directory: the prepared data directory.
        manifest: its parsed manifest, whose :data:`MANIFEST_KEY` records the file.
    """
    path, entry = directory / DESCRIPTORS_FILE, manifest.get(MANIFEST_KEY)
    if entry is None or entry.get("version") != DESCRIPTORS_VERSION:
        return f"its manifest records no {DESCRIPTORS_FILE} of version {DESCRIPTORS_VERSION}"
    if not path.exists():
        return f"{path} is missing"
    if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
        return f"{path} does not match its checksum"
    return None


def read_descriptors(directory: Path, manifest: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The descriptors of a prepared directory, checked against their manifest entry, in the order of the space's
    domains.

    Args:
        directory: the prepared data directory.
        manifest: its parsed manifest.

    Raises:
        CacheError: missing or corrupt descriptors, with the command that rebuilds them.
    """
    problem = descriptors_problem(directory, manifest)
    if problem is not None:
        raise CacheError(f"The prepared data at {directory} has no usable domain descriptors ({problem}); "
                         f"`mixing-gym prepare --space {manifest['space']['name']}` computes them.")
    descriptors = json.loads((directory / DESCRIPTORS_FILE).read_text())
    return {domain["name"]: descriptors[domain["name"]] for domain in manifest["space"]["domains"]}


# ------------------------------------------------------------------------------------------------ layouts


def with_base_loss(descriptors: Mapping[str, Mapping[str, float]], benchmarks: Sequence[BenchmarkSpec],
                   base_scores: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """``descriptors`` with each domain's :data:`BASE_BPB`: the base score of its held-out language-modelling
    benchmark (``mg_bpb_<domain>``), where the benchmarks hold one.

    Args:
        descriptors: domain -> descriptor -> value, as :func:`compute_descriptors` gives them.
        benchmarks: a layout's benchmarks.
        base_scores: the base model's raw scores, by benchmark.
    """
    merged = {name: dict(values) for name, values in descriptors.items()}
    for spec in benchmarks:
        if spec.kind == "lm" and spec.domain in merged:
            merged[spec.domain][BASE_BPB] = float(base_scores[spec.name])
    return merged


def descriptor_matrix(descriptors: Mapping[str, Mapping[str, float]], domain_names: Sequence[str],
                      features: Iterable[str]) -> np.ndarray:
    """``(K, F)``: the descriptors ``features`` of each domain, in ``domain_names``'s order.

    Args:
        descriptors: domain -> descriptor -> value (a layout's ``domain_descriptors``).
        domain_names: the domains, in the order of the rows.
        features: the descriptors, in the order of the columns.

    Raises:
        KeyError: a domain or a descriptor the mapping lacks, named.
    """
    features = list(features)
    missing = sorted({f"{name}: {feature}" for name in domain_names for feature in features
                      if feature not in descriptors.get(name, {})})
    if missing:
        raise KeyError(f"The domain descriptors lack {missing[:5]}{' ...' if len(missing) > 5 else ''}.")
    return np.array([[descriptors[name][feature] for feature in features] for name in domain_names], dtype=np.float64)


def require_descriptors(layout: MixingLayout) -> None:
    """Raise the ``ValueError`` that says how to get descriptors if ``layout`` has none.

    Args:
        layout: an env's or a recording's layout.
    """
    if not layout.domain_descriptors:
        raise ValueError("This layout has no domain descriptors, and what reads a domain by what it holds needs them: "
                         "use a real env (its prepared data computes them), or add them to a recorded layout with "
                         "mixing_gym.recorded_layouts.add_descriptors(folder).")


def standardised(values: np.ndarray) -> np.ndarray:
    """``values`` standardised over the domains (axis 0); 0 where they are all equal.

    Args:
        values: ``(K, ...)`` one row per domain.
    """
    spread = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def domain_features(layout: MixingLayout) -> np.ndarray:
    """``(K, len(DOMAIN_FEATURES))``: the layout's domain descriptors as features that mean the same on every space.

    Each task's importance is standardised over the space's domains before it is averaged (and maxed) over the
    field's tasks, so that a feature says how a domain ranks among the space's domains, not how many nats its
    tokenizer gives; a field without task benchmarks reads 0 there. The log of the unique training tokens and the
    base model's bits per byte are standardised over the domains too.

    Args:
        layout: a layout with domain descriptors (a real env's, or a recorded one they were added to) holding
            ``base_bpb``.

    Raises:
        ValueError: a layout without domain descriptors, with how to get them.
    """
    require_descriptors(layout)
    names = layout.domain_names
    columns = []
    for field in ("target", "source"):
        tasks = [importance_name(spec.name) for spec in layout.benchmarks
                 if spec.kind == "task" and spec.field == field]
        if tasks:
            importance = standardised(descriptor_matrix(layout.domain_descriptors, names, tasks))
            columns += [importance.mean(axis=1), importance.max(axis=1)]
        else:
            columns += [np.zeros(len(names)), np.zeros(len(names))]
    sizes = descriptor_matrix(layout.domain_descriptors, names, [TRAIN_TOKENS, BASE_BPB])
    sizes[:, 0] = np.log(np.maximum(sizes[:, 0], 1.0))
    return np.column_stack([*columns, standardised(sizes)])
