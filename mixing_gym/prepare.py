"""``mixing-gym prepare``: extract every domain's text, train a tokenizer, write token shards and eval sets.

Layout of one prepared data directory (``<cache>/data/<space>-<fingerprint>/``)::

    tokenizer/                   Hugging Face tokenizer (byte-level BPE trained here, or the model's own)
    domains/<name>.train.bin     token ids of the train split, documents separated by EOS (numpy memmap)
    domains/<name>.heldout.bin   token ids of the held-out split
    tasks/<task>.jsonl           held-out evaluation sets read by the lm-eval tasks in ``mixing_gym/tasks``
    manifest.json                sizes and sha256 of every file above; written last, so it marks completion
    descriptors.json             what each domain holds (:mod:`mixing_gym.descriptors`), computed from the files
                                 above once they are complete; the manifest records its size and sha256
    models/<preset>-<hash>/      base checkpoints (see :mod:`mixing_gym.engine`)

The fingerprint covers the :class:`DataConfig` and the domain space, so changing either prepares a new
directory rather than mixing incompatible files. Preparation holds a file lock, so concurrent processes
wait for the first one and then reuse its result.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from mixing_gym.benchmark_data import (
    TASK_BENCHMARKS,
    TaskInputs,
    continuation_items,
    humaneval_items,
    problem_items,
    token_passages,
)
from mixing_gym.descriptors import (
    MANIFEST_KEY,
    compute_descriptors,
    descriptors_problem,
    read_descriptors,
    write_descriptors,
)
from mixing_gym.domains import DomainSpace, get_domain_space
from mixing_gym.sources import CorpusSource, Problem, ProblemSource
from mixing_gym.storage import (
    CacheError,
    atomic_write_bytes,
    atomic_write_json,
    fingerprint,
    resolve_cache_dir,
    sha256_file,
    write_jsonl,
)

MANIFEST_VERSION = 1
EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
#: DataConfig fields that decide the tokenizer and the training shards (and so the base checkpoints).
TRAIN_DATA_FIELDS = ("vocab_size", "max_train_chars", "heldout_fraction", "seed", "tokenizer")


@dataclass(frozen=True)
class DataConfig:
    """How much text to prepare and how to split it.

    Args:
        vocab_size: size of the byte-level BPE vocabulary trained by ``prepare``.
        max_train_chars: characters of train text kept per domain.
        heldout_fraction: share of each corpus's documents held out (chosen by a hash of the text).
        heldout_problems: held-out problems generated per problem domain.
        eval_chars: characters of held-out text per domain scored for bits-per-byte.
        eval_passage_tokens: the most tokens in one scored passage; below every preset's context, so
            lm-eval scores each passage in one window with no padding.
        mc_items: items per multiple-choice benchmark and per task benchmark.
        seed: seed of problem generation and benchmark construction.
        tokenizer: a local Hugging Face tokenizer (or model) directory to use instead of training one.
    """

    vocab_size: int = 4096
    max_train_chars: int = 2_000_000
    heldout_fraction: float = 0.05
    heldout_problems: int = 400
    eval_chars: int = 4_000
    eval_passage_tokens: int = 120
    mc_items: int = 48
    seed: int = 0
    tokenizer: str | None = None


# --------------------------------------------------------------------------------------------
# Splitting and benchmark construction


def _capped(value: int, cap: int | None) -> int:
    """``value``, at most ``cap`` (a space's scoring budget; ``None``: no cap)."""
    return value if cap is None else min(value, cap)


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest(), "little")


def split_documents(documents: list[str], heldout_fraction: float) -> tuple[list[str], list[str]]:
    """Disjoint train/held-out split by a hash of each document; documents come back in hash order.

    Hash order is a deterministic shuffle, so a cap on characters keeps a sample of the whole corpus
    rather than its alphabetical head. At least one document is held out.
    """
    unique = sorted(set(documents), key=_stable_hash)
    threshold = heldout_fraction * 2**64
    heldout = [doc for doc in unique if _stable_hash(doc) * 1.0 < threshold] or unique[:1]
    held = set(heldout)
    return [doc for doc in unique if doc not in held], heldout


def take_chars(items: list, max_chars: int, text=lambda item: item) -> list:
    """The leading items whose text adds up to about ``max_chars`` characters (the last one whole): what
    ``prepare`` keeps of a domain's train documents.

    Args:
        items: documents, or other items whose text ``text`` gives, in the order they are taken.
        max_chars: characters to take.
        text (Callable): an item's text (default: the item itself).
    """
    taken, total = [], 0
    for item in items:
        if total >= max_chars:
            break
        taken.append(item)
        total += len(text(item))
    return taken


# --------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(texts_by_domain: dict[str, list[str]], vocab_size: int, chars_per_domain: int = 1_000_000):
    """Train a byte-level BPE on an equal share of every domain's text and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sample = [doc for docs in texts_by_domain.values() for doc in take_chars(docs, chars_per_domain)]
    tokenizer.train_from_iterator(sample, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN
    )


def load_tokenizer(path: str | Path):
    """A tokenizer from a local directory; never runs code from it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    if tokenizer.eos_token is None:
        raise ValueError(f"The tokenizer in {path} has no EOS token; documents could not be separated.")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _encode(tokenizer, documents: list[str], dtype: np.dtype) -> np.ndarray:
    ids = tokenizer(documents, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return np.fromiter((t for doc in ids for t in (*doc, eos)), dtype=dtype)


# --------------------------------------------------------------------------------------------
# The prepared directory


class PreparedData:
    """A complete prepared data directory; open it with :func:`prepare_data` or :meth:`open`.

    Args:
        path: the directory.
        space: the domain space it was prepared for.
        manifest: the parsed ``manifest.json``.
    """

    def __init__(self, path: Path, space: DomainSpace, manifest: dict):
        self.path = path
        self.space = space
        self.manifest = manifest
        self.dtype = np.dtype(manifest["dtype"])

    def __repr__(self) -> str:
        return f"PreparedData({str(self.path)!r}, space={self.space.name!r})"

    @classmethod
    def open(cls, path: Path, space: DomainSpace, verify: bool = True) -> PreparedData:
        """Open a prepared directory, checking that it is complete and (``verify``) uncorrupted."""
        manifest_path = path / "manifest.json"
        rebuild = f"Rebuild it with `mixing-gym prepare --space {space.name} --force` (or delete {path})."
        if not manifest_path.exists():
            raise CacheError(f"No prepared data at {path} (manifest.json missing). Run `mixing-gym prepare "
                             f"--space {space.name}` or pass auto_prepare=True.")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise CacheError(f"{manifest_path} is corrupt ({error}). {rebuild}") from error
        if manifest.get("version") != MANIFEST_VERSION or "benchmarks" not in manifest:
            raise CacheError(f"{path} was prepared by another version of mixing-gym. {rebuild}")
        for relative, expected in manifest["files"].items():
            file = path / relative
            if not file.exists():
                raise CacheError(f"{file} is missing from the prepared data. {rebuild}")
            if file.stat().st_size != expected["bytes"]:
                raise CacheError(f"{file} has {file.stat().st_size} bytes, expected {expected['bytes']}: "
                                 f"the file is partial or corrupt. {rebuild}")
            if verify and sha256_file(file) != expected["sha256"]:
                raise CacheError(f"{file} does not match its checksum: the file is corrupt. {rebuild}")
        return cls(path, space, manifest)

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.path / "tokenizer")

    def train_tokens(self, domain: str) -> np.memmap:
        return self._shard(domain, "train")

    def heldout_tokens(self, domain: str) -> np.memmap:
        return self._shard(domain, "heldout")

    def _shard(self, domain: str, split: str) -> np.memmap:
        self.space.index(domain)  # a clear KeyError for an unknown domain
        return np.memmap(self.path / "domains" / f"{domain}.{split}.bin", dtype=self.dtype, mode="r")

    @property
    def tasks_dir(self) -> Path:
        return self.path / "tasks"

    @property
    def models_dir(self) -> Path:
        """Where base checkpoints trained on this data live: keyed by the training text and tokenizer only,
        so changing the benchmarks (eval sizes, passages, items) reuses them."""
        config = self.manifest["config"]
        identity = {key: config[key] for key in TRAIN_DATA_FIELDS}
        key = fingerprint({"data": identity, "space": self.space.describe(), "version": MANIFEST_VERSION})
        return self.path.parent.parent / "models" / f"{self.space.name}-{key}"

    def domain_stats(self) -> dict[str, dict]:
        return self.manifest["domains"]

    @cached_property
    def descriptors(self) -> dict[str, dict[str, float]]:
        """What each domain holds, domain -> descriptor -> value (:mod:`mixing_gym.descriptors`).

        Raises:
            CacheError: the directory has no usable descriptors (``prepare_data`` computes them).
        """
        return read_descriptors(self.path, self.manifest)


def data_dir_for(space: DomainSpace, config: DataConfig, cache_dir: str | Path | None = None) -> Path:
    identity = {"data": asdict(config), "space": space.describe(), "version": MANIFEST_VERSION}
    # Base checkpoints (PreparedData.models_dir) depend on neither, so a change of a task reuses them.
    identity["tasks"] = {name: TASK_BENCHMARKS[name].version for name in space.benchmarks if name in TASK_BENCHMARKS}
    identity.update({knob: getattr(space, knob) for knob in ("eval_chars", "task_items")})
    key = fingerprint(identity)
    return resolve_cache_dir(cache_dir) / "data" / f"{space.name}-{key}"


def prepare_data(
    space: str | DomainSpace = "math",
    config: DataConfig = DataConfig(),
    cache_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> PreparedData:
    """Prepare (or reuse) the data directory of ``space`` under ``config``; idempotent and process-safe."""
    space = get_domain_space(space)
    path = data_dir_for(space, config, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not force:
            try:
                return _with_descriptors(PreparedData.open(path, space), progress)
            except CacheError as error:
                if path.exists():
                    tqdm.write(f"mixing-gym: rebuilding the prepared data: {error}")
        if path.exists():
            shutil.rmtree(path)
        _build(path, space, config, progress)
        return _with_descriptors(PreparedData.open(path, space, verify=False), progress)


def _with_descriptors(data: PreparedData, progress: bool) -> PreparedData:
    """``data``, its domain descriptors computed and recorded in its manifest where they are missing or corrupt (a
    directory prepared before they existed needs only them, not a new preparation). Called under the directory's lock.

    Args:
        data: a complete prepared directory.
        progress: say so when they are computed.
    """
    problem = descriptors_problem(data.path, data.manifest)
    if problem is None:
        return data
    if progress:
        tqdm.write(f"mixing-gym: computing the domain descriptors ({problem}).", file=sys.stderr)
    manifest = {**data.manifest, MANIFEST_KEY: write_descriptors(data.path, compute_descriptors(data))}
    atomic_write_json(data.path / "manifest.json", manifest)
    return PreparedData(data.path, data.space, manifest)


def _build(path: Path, space: DomainSpace, config: DataConfig, progress: bool) -> None:
    if progress:
        tqdm.write(f"mixing-gym: first use of space {space.name!r} with this data config: extracting its "
                   f"{len(space)} domains, training the tokenizer and writing token shards and held-out benchmark "
                   f"sets into {path} (once; about half a minute for the built-in sources).", file=sys.stderr)
    rng = np.random.default_rng(config.seed)
    train_text: dict[str, list[str]] = {}
    heldout_text: dict[str, list[str]] = {}
    tasks: dict[str, list[dict]] = {}
    #: What each benchmark measures, recorded in the manifest so that no reader parses task names.
    roles: dict[str, dict] = {}
    mc_pools: dict[str, list[str]] = {"source": [], "target": []}
    eval_text: dict[str, str] = {}

    for domain in tqdm(space.domains, desc="extracting domains", disable=not progress):
        if isinstance(domain.source, ProblemSource):
            train, heldout = generate_problems(domain.source, config)
            train_text[domain.name] = [p.text for p in train]
            heldout_text[domain.name] = [p.text for p in heldout]
            items = problem_items(heldout[: config.mc_items], rng)
            if items:  # a family whose held-out answers are too few to offer 4 choices has no such benchmark
                tasks[f"mc_{domain.name}"] = items
                roles[f"mc_{domain.name}"] = {"field": domain.field, "kind": "accuracy", "domain": domain.name}
            eval_docs = [p.text for p in heldout[config.mc_items:]]
        else:
            train, heldout = split_documents(domain.source.documents(), config.heldout_fraction)
            if not train:
                raise ValueError(f"Domain {domain.name!r} has too little text to split into train and held-out.")
            train_text[domain.name] = take_chars(train, config.max_train_chars)
            heldout_text[domain.name] = take_chars(heldout, config.max_train_chars)
            eval_docs = heldout
            mc_pools[domain.field].append(domain.name)
        eval_text[domain.name] = "\n\n".join(eval_docs)

    for field_name, names in mc_pools.items():
        if names:
            per_domain = -(-config.mc_items // len(names))
            tasks[f"{field_name}_continuation"] = [
                item for name in names for item in continuation_items(heldout_text[name], per_domain, rng)
            ][: config.mc_items]
            roles[f"{field_name}_continuation"] = {"field": field_name, "kind": "accuracy", "domain": None}
    if "humaneval" in space.benchmarks:
        tasks["humaneval_mc"] = humaneval_items(config.mc_items, rng)
        roles["humaneval_mc"] = {"field": "target", "kind": "accuracy", "domain": None}
    splits: dict[CorpusSource, tuple[list[str], list[str]]] = {}  # the tasks' corpora, each split once

    def split(source: CorpusSource) -> tuple[list[str], list[str]]:
        if source not in splits:
            splits[source] = split_documents(source.documents(), config.heldout_fraction)
        return splits[source]

    inputs = TaskInputs(heldout=lambda source: split(source)[1], train=lambda source: split(source)[0],
                        count=_capped(config.mc_items, space.task_items), rng=rng, seed=config.seed,
                        problem_sources=tuple(d.source for d in space.domains if isinstance(d.source, ProblemSource)))
    for name in space.benchmarks:
        if name in TASK_BENCHMARKS:
            tasks[f"task_{name}"] = TASK_BENCHMARKS[name].build(inputs)
            roles[f"task_{name}"] = {"field": TASK_BENCHMARKS[name].field_in(space.target_field), "kind": "task",
                                     "domain": None}

    staging = path.with_name(path.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "domains").mkdir(parents=True)
    if config.tokenizer is None:
        tokenizer = train_tokenizer(train_text, config.vocab_size)
    else:
        tokenizer = load_tokenizer(config.tokenizer)
    tokenizer.save_pretrained(str(staging / "tokenizer"))
    for name, text in eval_text.items():
        tasks[f"bpb_{name}"] = [{"text": passage} for passage in
                                token_passages(text, tokenizer, config.eval_passage_tokens,
                                               _capped(config.eval_chars, space.eval_chars))]
        roles[f"bpb_{name}"] = {"field": space.domains[space.index(name)].field, "kind": "lm", "domain": name}
    for name in [name for name, role in roles.items() if role["kind"] == "task"]:
        # lm-eval scores a gold answer in one window: it must fit every preset's context (the prompt is cut)
        tasks[name] = [item for item in tasks[name] if len(tokenizer(item["answer"], add_special_tokens=False)
                                                            ["input_ids"]) <= config.eval_passage_tokens]
    dtype = np.dtype(np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.uint32)

    domain_stats = {}
    for domain in tqdm(space.domains, desc="tokenizing domains", disable=not progress):
        stats = {"field": domain.field}
        for split, texts in (("train", train_text[domain.name]), ("heldout", heldout_text[domain.name])):
            tokens = _encode(tokenizer, texts, dtype)
            atomic_write_bytes(staging / "domains" / f"{domain.name}.{split}.bin", tokens.tobytes())
            stats[f"{split}_tokens"] = int(tokens.size)
            stats[f"{split}_documents"] = len(texts)
            stats[f"{split}_chars"] = sum(map(len, texts))
        domain_stats[domain.name] = stats

    for name, rows in tasks.items():
        if not rows:
            raise ValueError(f"The benchmark {name!r} came out empty; the domain has too little held-out text.")
        write_jsonl(staging / "tasks" / f"{name}.jsonl", rows)

    files = {
        str(file.relative_to(staging)): {"bytes": file.stat().st_size, "sha256": sha256_file(file)}
        for file in sorted(staging.rglob("*")) if file.is_file()
    }
    manifest = {
        "version": MANIFEST_VERSION,
        "space": space.describe(),
        "config": asdict(config),
        "dtype": dtype.name,
        "vocab_size": len(tokenizer),
        "domains": domain_stats,
        "tasks": {name: len(rows) for name, rows in tasks.items()},
        "benchmarks": roles,
        "files": files,
    }
    staging.rename(path)
    atomic_write_json(path / "manifest.json", manifest)


def generate_problems(source: ProblemSource, config: DataConfig) -> tuple[list[Problem], list[Problem]]:
    """A problem family's train and held-out problems, as ``prepare`` generates them: train problems up to
    ``max_train_chars`` and held-out problems from another seed, none seen in train.

    Args:
        source: the domain's problem family.
        config: the data config whose seed and sizes apply.
    """
    train: list[Problem] = []
    chunk = 0
    while sum(len(p.text) for p in train) < config.max_train_chars:
        train += source.problems(seed=config.seed * 10_000 + chunk, count=2_000)
        chunk += 1
    train = take_chars(train, config.max_train_chars, text=lambda problem: problem.text)
    seen = {p.context for p in train}
    candidates = source.problems(seed=config.seed * 10_000 + 9_999, count=config.heldout_problems * 2)
    heldout = [p for p in dict.fromkeys(candidates) if p.context not in seen][: config.heldout_problems]
    if len(heldout) <= config.mc_items:
        raise ValueError(f"Only {len(heldout)} unseen held-out problems; lower max_train_chars or mc_items.")
    return train, heldout

