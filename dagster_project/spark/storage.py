"""Where the refresh writes the Parquet files Spark's tables are defined over, and how it reads the files of the
tables dbt built: through pyarrow's file systems, so the same code serves a local folder, a shared mount, and the
object stores a cluster reads (S3, GCS, Azure, HDFS) without a Spark client in the refresh's process.

The root is ``CRM_SPARK_STORAGE`` as Spark names it (``s3a://bucket/crm``, ``abfss://…``, ``/mnt/lake``); by default
``<warehouse folder>/spark/``, beside the local session's metastore. Hadoop's S3 scheme names are translated when this
process opens a path (``s3a://`` is pyarrow's ``s3://``); Spark always gets the URI as configured. Local folders are
``file:<path>``, unencoded, as Spark writes and reads a location, and opened as plain paths.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from dagster_project.privacy.modes import private_dir
from dagster_project.warehouse_files import spark_dir

STORAGE_VARIABLE = "CRM_SPARK_STORAGE"
# Hadoop's S3 connector schemes: pyarrow reads the same objects as s3:// (gs://, abfs:// and abfss:// it reads as is).
_PYARROW_SCHEMES = {"s3a": "s3", "s3n": "s3"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def storage_root(warehouse: Path, environ: Mapping[str, str] | None = None) -> str:
    """The configured root as Spark names it: a URI with its scheme, a local folder as ``file:<absolute path>``
    (unencoded: Spark takes a table's location as written and does not decode ``%20``)."""
    configured = (os.environ if environ is None else environ).get(STORAGE_VARIABLE, "").strip()
    if not configured:
        return local_location(spark_dir(warehouse))
    if configured.startswith("file:"):
        return local_location(Path(_local_path(configured)))
    if not _SCHEME.match(configured):
        return local_location(Path(configured))
    return configured.rstrip("/")


def local_location(path: Path) -> str:
    return "file:" + str(Path(path).absolute())


def new_version() -> str:
    """A version folder's name: UTC time first, so names sort by when they were written, and a random suffix."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Storage:
    root: str  # as Spark names it (storage_root)

    def uri(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def make_private(self) -> None:
        """A local root holds raw rows and restricted tables: owner-only, whatever the umask (docs/security.md). An
        object store's access is its own configuration."""
        if self.root.startswith("file:"):
            private_dir(Path(_local_path(self.root)))

    def write_parquet(self, relative: str, batches: pa.RecordBatchReader) -> None:
        """Write one Parquet file at root/relative from a stream of record batches (never the whole table in memory)."""
        filesystem, path = _open(self.uri(relative))
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with pq.ParquetWriter(path, batches.schema, filesystem=filesystem, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)

    def copy_file(self, source: Path, relative: str) -> None:
        filesystem, path = _open(self.uri(relative))
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(str(source), path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=filesystem)

    def folders(self, relative: str) -> list[str]:
        """The names of the folders directly under root/relative, in name order (none when it does not exist)."""
        filesystem, path = _open(self.uri(relative))
        found = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return sorted(info.base_name for info in found if info.type == pafs.FileType.Directory)

    def delete(self, relative: str) -> None:
        filesystem, path = _open(self.uri(relative))
        if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
            filesystem.delete_dir(path)


def read_batches(location: str, columns: list[str], schema: Callable[[], pa.Schema]) -> pa.RecordBatchReader:
    """The rows of the Parquet files under a Spark table's location, as a stream of batches of `columns` (memory bounded
    by a batch, not by the table). Spark's own _SUCCESS and .crc files are skipped by pyarrow's default of ignoring
    names that start with _ or .; without files (or without the folder: an object store has no empty folders) the
    stream is empty, of the table's `schema()` as Spark describes it."""
    filesystem, path = _open(location)
    files = []
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        dataset = ds.dataset(path, filesystem=filesystem, format="parquet")
        files = dataset.files
    if not files:
        return pa.RecordBatchReader.from_batches(schema(), iter(()))
    return dataset.scanner(columns=columns).to_reader()


def _local_path(location: str) -> str:
    """file:/x, file:///x and file://localhost/x as a local path (left unencoded, as Spark writes it)."""
    rest = location[len("file:"):]
    if rest.startswith("//"):
        rest = rest[2:]
        rest = rest[rest.index("/"):] if "/" in rest else "/"
    return unquote(rest) if "%" in rest and not Path(rest).exists() else rest


def _open(location: str) -> tuple[pafs.FileSystem, str]:
    if location.startswith("file:"):
        return pafs.LocalFileSystem(), _local_path(location)
    scheme = _SCHEME.match(location)
    if scheme and scheme.group(1).lower() in _PYARROW_SCHEMES:
        location = _PYARROW_SCHEMES[scheme.group(1).lower()] + location[len(scheme.group(1)):]
    return pafs.FileSystem.from_uri(location)
