"""Where the cache lives and how files are written: cache paths, cache errors, hashing, atomic writes, CSV upserts."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CACHE_ENV_VAR = "MIXING_GYM_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/mixing_gym")


class CacheError(RuntimeError):
    """The prepared data or a checkpoint is missing, partial or corrupt; the message names the fix."""


def default_cache_dir() -> Path:
    """The cache root: ``$MIXING_GYM_CACHE`` if set, else ``~/.cache/mixing_gym``."""
    return Path(os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE_DIR).expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def fingerprint(obj: Any, length: int = 10) -> str:
    """A short stable hash of a JSON-serialisable object (dict keys are sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(row) + "\n" for row in rows).encode())


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def upsert_csv(path: Path, rows: pd.DataFrame, key_columns: Sequence[str], float_format: str | None = None) -> None:
    """Write ``rows`` into the CSV at ``path``: they replace its rows with the same key, the others stay as they are.

    The file's rows are kept as the text they hold (no number is read and written back), the new rows follow
    them; a column the file lacks is added at the end (empty in the kept rows). The whole file is written
    atomically, so a killed study leaves the old file or the new one.

    Args:
        path: the CSV (created with the rows' columns if missing).
        rows: the new rows; several may share a key (every row of that key in the file is replaced).
        key_columns: the columns whose values make a row's key.
        float_format: how the new rows' floats are written (``"%.6f"``); default: the shortest exact form.
    """
    import pandas as pd  # here: the cache's readers need no pandas

    # The new rows as the text they will hold, so that old and new keys compare as the file spells them.
    new = pd.read_csv(io.StringIO(rows.to_csv(index=False, float_format=float_format)), dtype=str,
                      keep_default_na=False)
    if path.exists():
        old = pd.read_csv(path, dtype=str, keep_default_na=False)
        replaced = old.set_index(list(key_columns)).index.isin(new.set_index(list(key_columns)).index)
        new = pd.concat([old[~replaced], new], ignore_index=True).fillna("")
    atomic_write_bytes(path, new.to_csv(index=False).encode())
