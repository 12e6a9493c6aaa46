"""Domain spaces, text sources and the prepared cache."""

from __future__ import annotations

import json
import multiprocessing
import shutil

import numpy as np
import pytest
from conftest import TINY_DATA

from mixing_gym.domains import BUILTIN_SPACES, DomainSpace, get_domain_space
from mixing_gym.prepare import PreparedData, data_dir_for, prepare_data, split_documents
from mixing_gym.sources import LicenseSource, ReasoningGymSource
from mixing_gym.storage import CacheError


def test_builtin_spaces_meet_the_design():
    math = get_domain_space("math")
    sources = {type(d.source).__name__ for d in math.domains if d.field == "source"}
    assert len(math.source_names) >= 6 and len(sources) >= 4
    assert len(math.target_names) >= 4
    assert all(isinstance(d.source, ReasoningGymSource) for d in math.subspace("target"))
    code = get_domain_space("code")
    assert "humaneval" in code.benchmarks and code.target_names
    assert set(BUILTIN_SPACES) >= {"math", "code"}


def test_split_is_disjoint_and_deterministic():
    documents = LicenseSource().documents()
    train, heldout = split_documents(documents, 0.1)
    assert train and heldout and not set(train) & set(heldout)
    assert len(train) + len(heldout) == len(set(documents))
    assert split_documents(list(reversed(documents)), 0.1) == (train, heldout)


def test_prepared_files(prepared):
    data, _ = prepared
    assert set(data.domain_stats()) == set(data.space.names)
    for name in data.space.names:
        train, heldout = data.train_tokens(name), data.heldout_tokens(name)
        assert len(train) > 1000 and len(heldout) > 50
        assert train.max() < len(data.tokenizer)
    text = "def mix(weights):\n    return sum(weights) == 1  # Genesis 1:1"
    ids = data.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert data.tokenizer.decode(ids) == text
    manifest = json.loads((data.path / "manifest.json").read_text())
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())


def test_heldout_problems_are_unseen(prepared):
    data, _ = prepared
    train_text = data.tokenizer.decode(data.train_tokens("math_equations"))
    items = [json.loads(line) for line in (data.tasks_dir / "mc_math_equations.jsonl").read_text().splitlines()]
    assert items and all(item["context"] not in train_text for item in items)
    assert all(0 <= item["gold"] < len(item["choices"]) for item in items)


def test_prepare_is_idempotent(prepared, cache_dir):
    data, _ = prepared
    before = (data.path / "manifest.json").stat().st_mtime_ns
    again = prepare_data("math", TINY_DATA, cache_dir, progress=False)
    assert again.path == data.path
    assert (data.path / "manifest.json").stat().st_mtime_ns == before


SMALL_SPACE = {"name": "tiny", "target_field": "math",
               "domains": [{"name": "news", "field": "source"}, {"name": "math_fractions", "field": "target"}]}


def _prepare_in_subprocess(cache_dir: str) -> str:
    return str(prepare_data(SMALL_SPACE, TINY_DATA, cache_dir, progress=False).path)


def test_concurrent_prepare_builds_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        paths = pool.map(_prepare_in_subprocess, [str(tmp_path)] * 2)
    assert paths[0] == paths[1]
    assert PreparedData.open(data_dir_for(get_domain_space(SMALL_SPACE), TINY_DATA, tmp_path),
                             get_domain_space(SMALL_SPACE))


def test_corrupt_and_partial_caches_are_detected_and_rebuilt(tmp_path):
    space = get_domain_space(SMALL_SPACE)
    data = prepare_data(space, TINY_DATA, tmp_path, progress=False)
    shard = data.path / "domains" / "news.train.bin"
    good = shard.read_bytes()
    shard.write_bytes(bytes(reversed(good)))
    with pytest.raises(CacheError, match="checksum.*mixing-gym prepare --space tiny --force"):
        PreparedData.open(data.path, space)
    shard.write_bytes(good[:100])
    with pytest.raises(CacheError, match="partial or corrupt"):
        PreparedData.open(data.path, space)
    rebuilt = prepare_data(space, TINY_DATA, tmp_path, progress=False)
    assert shard.read_bytes() == good
    (rebuilt.path / "manifest.json").unlink()
    with pytest.raises(CacheError, match="manifest.json missing"):
        PreparedData.open(rebuilt.path, space)
    assert prepare_data(space, TINY_DATA, tmp_path, progress=False).train_tokens("news").size == len(good) // 2


def test_a_corrupt_base_checkpoint_is_named_and_rebuilt_to_the_same_weights(tmp_path):
    from conftest import MICRO

    from mixing_gym.engine import checkpoint_problem, open_prepared, prepare

    _, base = prepare(SMALL_SPACE, MICRO, tmp_path, TINY_DATA, progress=False)
    weights = base / "model.safetensors"
    good = weights.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40  # one bit of one parameter
    weights.write_bytes(bytes(flipped))
    with pytest.raises(CacheError, match=r"model\.safetensors does not match its checksum.*--force"):
        open_prepared(SMALL_SPACE, MICRO, tmp_path, TINY_DATA, auto_prepare=False, progress=False)
    _, rebuilt = open_prepared(SMALL_SPACE, MICRO, tmp_path, TINY_DATA, auto_prepare=True, progress=False)
    assert rebuilt == base and checkpoint_problem(base) is None and weights.read_bytes() == good
    built = (base / "base.json").stat().st_mtime_ns
    prepare(SMALL_SPACE, MICRO, tmp_path, TINY_DATA, force=True, progress=False)  # --force rebuilds models too
    assert (base / "base.json").stat().st_mtime_ns != built
    assert checkpoint_problem(base) is None and weights.read_bytes() == good


def test_an_interrupted_base_pretraining_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from conftest import MICRO

    from mixing_gym import engine
    from mixing_gym.models import get_preset
    from mixing_gym.trainer import ContinualTrainer

    monkeypatch.setattr(engine, "SNAPSHOT_BATCHES", 4)
    preset = get_preset(MICRO, base_tokens=3 * 4 * MICRO.seq_len * MICRO.batch_size)  # three snapshots
    _, base = engine.prepare(SMALL_SPACE, preset, tmp_path, TINY_DATA, progress=False)
    expected = (base / "model.safetensors").read_bytes()
    shutil.rmtree(base)

    chunks = []
    train = ContinualTrainer.train

    def interrupted(self, batches):
        if len(chunks) == 1:
            raise KeyboardInterrupt  # Ctrl-C during the second chunk
        chunks.append(batches.num_tokens)
        return train(self, batches)

    monkeypatch.setattr(ContinualTrainer, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.prepare(SMALL_SPACE, preset, tmp_path, TINY_DATA, progress=False)
    snapshots = list(tmp_path.rglob(f"*{engine.SNAPSHOT_SUFFIX}"))
    assert len(snapshots) == 1
    after = []

    def counted(self, batches):
        after.append(batches.num_tokens)
        return train(self, batches)

    monkeypatch.setattr(ContinualTrainer, "train", counted)
    _, resumed = engine.prepare(SMALL_SPACE, preset, tmp_path, TINY_DATA, progress=False)
    assert sum(chunks) + sum(after) == preset.base_tokens and len(after) == 2  # the first chunk is not trained again
    assert (resumed / "model.safetensors").read_bytes() == expected
    assert json.loads((resumed / "base.json").read_text())["tokens"] == preset.base_tokens
    assert not snapshots[0].exists()


def test_huggingface_dataset_domain_from_local_files(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"body": f"Report {i}: the river rose {i % 7} metres near the old mill, and the ferry to the "
                     f"north bank stopped for {i % 5 + 1} days while the council met."} for i in range(600)]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    space = DomainSpace.from_config({
        "name": "local", "target_field": "math",
        "domains": [{"name": "reports", "field": "source",
                     "hf": {"path": "json", "data_files": [str(corpus)], "text_column": "body"}},
                    {"name": "math_fractions", "field": "target"}],
    })
    data = prepare_data(space, TINY_DATA, tmp_path / "cache", progress=False)
    stats = data.domain_stats()["reports"]
    assert stats["train_documents"] > 100 and stats["heldout_documents"] > 10  # train capped by max_train_chars
    assert "river" in data.tokenizer.decode(data.train_tokens("reports")[:200])


def test_bad_space_configs_name_the_fix():
    with pytest.raises(KeyError, match="Unknown domain 'nope'.*built-in source"):
        DomainSpace.from_config({"domains": [{"name": "nope", "field": "source"}]})
    with pytest.raises(ValueError, match="has field 'both'"):
        DomainSpace.from_config({"domains": [{"name": "news", "field": "both"}]})
    with pytest.raises(ValueError, match="no target-field domain"):
        DomainSpace.from_config({"domains": [{"name": "news", "field": "source"}]})
    with pytest.raises(KeyError, match="Unknown domain space 'maths'"):
        get_domain_space("maths")


def test_hf_dataset_without_the_text_column(tmp_path):
    from mixing_gym.sources import HFDatasetSource

    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n')
    with pytest.raises(ValueError, match="no column 'body'.*set text_column"):
        HFDatasetSource("json", data_files=(str(path),), text_column="body").documents()


def test_missing_cache_without_auto_prepare_names_the_command(tmp_path):
    from mixing_gym.engine import open_prepared

    with pytest.raises(CacheError, match="mixing-gym prepare --space math"):
        open_prepared("math", "micro", tmp_path, TINY_DATA, auto_prepare=False)


def test_weights_validation():
    space = get_domain_space("math")
    k = len(space)
    uniform = np.full(k, 1 / k)
    assert np.allclose(space.mixture(uniform), uniform)
    assert space.mixture({"news": 0.5, "math_fractions": 0.5})[space.index("news")] == 0.5
    cases = [
        (np.full(k - 1, 1 / (k - 1)), ValueError, "shape"),
        (np.r_[np.nan, uniform[1:]], ValueError, "NaN"),
        (np.r_[np.inf, uniform[1:]], ValueError, "infinite"),
        (np.r_[-0.1, uniform[1:] + 0.1 / (k - 1)], ValueError, "negative"),
        (uniform * 2, ValueError, "sum to 2.*normalise"),
        ({"nowhere": 1.0}, KeyError, "Unknown domain 'nowhere'"),
    ]
    for weights, error, message in cases:
        with pytest.raises(error, match=message):
            space.mixture(weights)


def test_space_scoring_knobs_change_only_their_spaces_fingerprints():
    from mixing_gym.prepare import DataConfig, data_dir_for

    math = get_domain_space("math")
    assert data_dir_for(math, DataConfig(), "/cache") == data_dir_for(get_domain_space("math"), DataConfig(), "/cache")
    assert data_dir_for(math, DataConfig(), "/cache").name.startswith("math-")
    config = {"domains": [{"name": "news", "field": "source"}, {"name": "math_arithmetic", "field": "target"}]}
    plain, budgeted = DomainSpace.from_config(config), DomainSpace.from_config({**config, "eval_chars": 500})
    assert plain.describe() == budgeted.describe()  # base checkpoints (keyed by describe()) are shared
    assert data_dir_for(plain, DataConfig(), "/c") != data_dir_for(budgeted, DataConfig(), "/c")
    with pytest.raises(ValueError, match="'task_items' must be a whole number"):
        DomainSpace.from_config({**config, "task_items": "many"})
    with pytest.raises(ValueError, match="eval_chars must be a positive"):
        DomainSpace.from_config({**config, "eval_chars": 0})


def test_few_shot_tasks_are_solved_correctly_in_their_answers():
    import numpy as np

    from mixing_gym.benchmark_data import TaskInputs, decimal_items, equation_items

    inputs = TaskInputs(heldout=lambda source: [], train=lambda source: [], count=16, rng=np.random.default_rng(0),
                        seed=0)
    equations = equation_items(inputs)
    assert len(equations) == 16 and all(item["prompt"].count("Solution:") == 2 for item in equations)
    for item in equations:  # the worked solution ends with the value that solves the equation
        equation = item["prompt"].rsplit("Equation: ", 1)[1].split("\n")[0]
        variable, value = item["answer"].rsplit("\n", 1)[-1].split(" = ")[0], item["answer"].rsplit(" = ", 1)[1]
        left, right = equation.replace(variable, f"({value})").split("=")
        assert abs(eval(left) - eval(right)) < 1e-9  # noqa: S307 (our own generated arithmetic)
    decimals = decimal_items(inputs)
    assert len(decimals) == 16
    for item in decimals:
        expression = item["prompt"].rsplit("\n", 1)[1].removesuffix(" =")
        assert abs(eval(expression) - float(item["answer"])) <= 5.1e-4  # noqa: S307 (three places, rounded)
