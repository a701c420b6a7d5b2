"""Where the refresh writes the Parquet files Spark's tables are defined over, and how it reads the files of the
tables dbt built: through pyarrow's file systems, so the same code serves a local folder, a shared mount, and the
object stores a cluster reads (S3, GCS, Azure, HDFS) without a Spark client in the refresh's process.

The root is ``CRM_SPARK_STORAGE`` as Spark names it (``s3a://bucket/crm``, ``abfss://…``, ``/mnt/lake``); by default
``<warehouse folder>/spark/``, beside the local session's metastore. Hadoop's scheme names that pyarrow spells
otherwise are translated when this process opens a path (``s3a://`` is pyarrow's ``s3://``); Spark always gets the
URI as configured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from dagster_project.warehouse_files import spark_dir

STORAGE_VARIABLE = "CRM_SPARK_STORAGE"
# Hadoop's connector schemes and the pyarrow file system that reads the same objects.
_PYARROW_SCHEMES = {"s3a": "s3", "s3n": "s3", "gcs": "gs", "abfss": "abfs", "wasbs": "abfs"}


def storage_root(warehouse: Path, environ: Mapping[str, str] | None = None) -> str:
    """The configured root as a URI Spark reads (a plain local path becomes a file:// URI)."""
    configured = (os.environ if environ is None else environ).get(STORAGE_VARIABLE, "").strip()
    if not configured:
        return spark_dir(warehouse).absolute().as_uri()
    if "://" not in configured:
        return Path(configured).absolute().as_uri()
    return configured.rstrip("/")


@dataclass(frozen=True)
class Storage:
    root: str  # a URI as Spark names it

    @property
    def is_local(self) -> bool:
        return self.root.startswith("file:")

    def uri(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

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
        """The names of the folders directly under root/relative (none when it does not exist)."""
        filesystem, path = _open(self.uri(relative))
        found = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return sorted(info.base_name for info in found if info.type == pafs.FileType.Directory)

    def delete(self, relative: str) -> None:
        filesystem, path = _open(self.uri(relative))
        if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
            filesystem.delete_dir(path)


def read_batches(location: str, schema: pa.Schema, columns: list[str]) -> pa.RecordBatchReader:
    """The rows of the Parquet files under a Spark table's location, as a stream of batches of `columns` (memory bounded
    by a batch, not by the table). Spark's own _SUCCESS and .crc files are skipped by pyarrow's default of ignoring
    names that start with _ or .; `schema` (the table's, as Spark describes it) is the stream's when there are no files."""
    filesystem, path = _open(location)
    dataset = ds.dataset(path, filesystem=filesystem, format="parquet")
    if not dataset.files:
        return pa.RecordBatchReader.from_batches(schema, iter(()))
    return dataset.scanner(columns=columns).to_reader()


def _open(uri: str) -> tuple[pafs.FileSystem, str]:
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", uri)
    if scheme and scheme.group(1).lower() in _PYARROW_SCHEMES:
        uri = _PYARROW_SCHEMES[scheme.group(1).lower()] + uri[len(scheme.group(1)):]
    if uri.startswith("file:") and not uri.startswith("file://"):
        uri = "file://" + uri[len("file:"):]  # Spark's metastore writes file:/path
    return pafs.FileSystem.from_uri(uri)
