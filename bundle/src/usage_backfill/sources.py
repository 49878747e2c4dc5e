"""The raw files a partition reads: every file under `<raw_root>/ingest_date=YYYY-MM-DD/`
for day D through D + lookback, exact duplicates (same bytes under another name or in
another folder) dropped deterministically: the earliest-arriving copy is kept."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
_INGEST_DATE = re.compile(r"ingest_date=(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True, order=True)
class SourceFile:
    ingest_date: dt.date
    path: str
    length: int

    @property
    def is_json(self) -> bool:
        return self.path.endswith(JSON_SUFFIXES)


@dataclass(frozen=True)
class DuplicateFile:
    path: str
    duplicate_of: str


@dataclass(frozen=True)
class SourceSelection:
    """The files to read, and the copies left out."""

    kept: tuple[SourceFile, ...]
    duplicates: tuple[DuplicateFile, ...]


def normalize_path(path: str) -> str:
    """One spelling per local file (`file:/x` and `file:///x` are the same); others as given."""
    if path.startswith("file:"):
        return "file:/" + path[len("file:") :].lstrip("/")
    return path


def window_dates(day: dt.date, lookback_days: int) -> list[dt.date]:
    return [day + dt.timedelta(days=i) for i in range(lookback_days + 1)]


def list_window(
    spark: SparkSession, raw_root: str, day: dt.date, lookback_days: int
) -> list[SourceFile]:
    """Every data file in the window's ingest folders (subfolders included), sorted."""
    dates = ",".join(d.isoformat() for d in window_dates(day, lookback_days))
    pattern = f"{raw_root}/ingest_date={{{dates}}}"
    try:
        listing = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(pattern)
            .select("path", "length")
            .collect()
        )
    except AnalysisException as e:
        if "PATH_NOT_FOUND" in str(e) or "Path does not exist" in str(e):
            return []
        raise
    files = []
    for row in listing:
        path = normalize_path(row["path"])
        match = _INGEST_DATE.search(path)
        if match and path.endswith(JSON_SUFFIXES + PARQUET_SUFFIXES):
            ingest = dt.date.fromisoformat(match.group(1))
            files.append(SourceFile(ingest, path, int(row["length"])))
    return sorted(files)


def content_hashes(spark: SparkSession, paths: list[str]) -> dict[str, str]:
    """SHA-256 of each file's bytes (read only for files whose size another file shares)."""
    if not paths:
        return {}
    rows = (
        spark.read.format("binaryFile")
        .load(paths)
        .select("path", F.sha2("content", 256).alias("sha256"))
        .collect()
    )
    return {normalize_path(r["path"]): r["sha256"] for r in rows}


def select_sources(spark: SparkSession, files: list[SourceFile]) -> SourceSelection:
    """Drops exact copies: among files with equal bytes, the first by (ingest date, path)."""
    by_length: dict[int, list[SourceFile]] = defaultdict(list)
    for f in files:
        by_length[f.length].append(f)
    candidates = [f.path for group in by_length.values() if len(group) > 1 for f in group]
    hashes = content_hashes(spark, candidates)
    first_with_hash: dict[str, str] = {}
    kept: list[SourceFile] = []
    duplicates: list[DuplicateFile] = []
    for f in sorted(files):
        digest = hashes.get(f.path)
        if digest is not None and digest in first_with_hash:
            duplicates.append(DuplicateFile(f.path, first_with_hash[digest]))
            continue
        if digest is not None:
            first_with_hash[digest] = f.path
        kept.append(f)
    return SourceSelection(tuple(kept), tuple(duplicates))
