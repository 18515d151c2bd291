"""The local data store: raw and processed parquet files and a JSON manifest.

Layout under the store root::

    manifest.json                      every entry, by key
    raw/SYMBOL-<sha16>.parquet         one validated series as loaded
    processed/<key16>.parquet          one model-ready dataset (features, label, split)

Each manifest entry records its source, rows, first and last date, the sha256
of its content and its creation time; processed entries also record the
sha256 of every raw input and the parameters they were built with, so a
dataset is rebuilt only when an input, the feature spec or a parameter changes.
Writes are atomic and the manifest is updated under a file lock, so several
processes can share one store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finscale.atomic import file_lock, write_json_atomic, write_parquet_atomic

MANIFEST_VERSION = 1


def frame_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a frame's content (index, column names, values), independent of file format."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(
        np.asarray(frame.index.to_numpy(), dtype="datetime64[ns]").astype("<i8").tobytes()
    )
    for column in frame.columns:
        values = frame[column].to_numpy()
        if values.dtype.kind in "fiub":
            digest.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
        else:
            digest.update("\x1f".join(map(str, values)).encode())
    return digest.hexdigest()


def params_sha256(params: dict[str, Any]) -> str:
    """sha256 of a JSON-able mapping, key order ignored."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _summary(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "rows": len(frame),
        "first_date": str(frame.index[0].date()) if len(frame) else None,
        "last_date": str(frame.index[-1].date()) if len(frame) else None,
    }


class DataStore:
    """A folder of parquet files indexed by `manifest.json`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def entries(self) -> dict[str, dict[str, Any]]:
        """All manifest entries by key (empty when the store is new)."""
        if not self.manifest_path.exists():
            return {}
        return json.loads(self.manifest_path.read_text())["entries"]

    @contextlib.contextmanager
    def _locked_manifest(self) -> Iterator[dict[str, dict[str, Any]]]:
        with file_lock(self.root / "manifest.lock"):
            entries = self.entries()
            yield entries
            write_json_atomic(self.manifest_path, {"version": MANIFEST_VERSION, "entries": entries})

    def _put(self, key: str, relative: str, frame: pd.DataFrame, entry: dict[str, Any]) -> dict:
        sha = frame_sha256(frame)
        path = self.root / relative
        write_parquet_atomic(path, frame)
        entry = {
            "key": key,
            "path": relative,
            "sha256": sha,
            "created_at": _now(),
            **_summary(frame),
            **entry,
        }
        with self._locked_manifest() as entries:
            entries[key] = entry
        return entry

    def put_raw(self, symbol: str, frame: pd.DataFrame, source: str) -> dict[str, Any]:
        """Store one validated series; a series already stored with the same content is kept."""
        sha = frame_sha256(frame)
        key = f"raw/{symbol}/{sha[:16]}"
        existing = self.entries().get(key)
        if existing and (self.root / existing["path"]).exists():
            return existing
        return self._put(
            key,
            f"raw/{symbol}-{sha[:16]}.parquet",
            frame,
            {"kind": "raw", "symbol": symbol, "source": source},
        )

    def get_processed(self, key: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """The processed entry and its table, or None when absent or damaged."""
        entry = self.entries().get(f"processed/{key}")
        if entry is None:
            return None
        path = self.root / entry["path"]
        if not path.exists():
            return None
        frame = pd.read_parquet(path)
        if frame_sha256(frame) != entry["sha256"]:
            return None  # damaged or edited by hand: rebuild rather than trust it
        return entry, frame

    def put_processed(
        self, key: str, frame: pd.DataFrame, source: str, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Store one processed dataset under its key (the hash of its inputs and parameters)."""
        return self._put(
            f"processed/{key}",
            f"processed/{key[:16]}.parquet",
            frame,
            {"kind": "processed", "source": source, **meta},
        )
