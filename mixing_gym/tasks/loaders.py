"""Dataset loader of the mixing-gym lm-eval tasks: reads a task's held-out items from a prepared directory."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV_VAR = "MIXING_GYM_DATA_DIR"


def load_task_data(file: str, data_dir: str | None = None, **_metadata):
    """``{"test": Dataset}`` of ``<data_dir>/tasks/<file>.jsonl``; ``data_dir`` comes from lm-eval's metadata."""
    import datasets

    from mixing_gym.storage import read_jsonl

    data_dir = data_dir or os.environ.get(DATA_DIR_ENV_VAR)
    if not data_dir:
        raise ValueError(
            "mixing-gym tasks read a prepared data directory: pass --metadata '{\"data_dir\": \"...\"}' to lm_eval "
            f"or set {DATA_DIR_ENV_VAR}; `mixing-gym tasks` prints the directory of each prepared space."
        )
    path = Path(data_dir) / "tasks" / f"{file}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: this task is not part of the space prepared in {data_dir}.")
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(read_jsonl(path))})


def gold_bits_per_byte(doc: dict, results: list) -> dict:
    """lm-eval ``process_results`` of the task template: the gold answer's log-likelihood and its UTF-8 bytes,
    which lm-eval's ``bits_per_byte`` aggregation turns into bits per byte over the whole task."""
    log_likelihood, _is_greedy = results[0]
    return {"bits_per_byte": (log_likelihood, len(doc["answer"].encode("utf-8")))}
