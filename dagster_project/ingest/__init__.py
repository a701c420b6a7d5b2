"""Ingestion: CRM export drops (``EXPORTS/<YYYY-MM-DD>/<entity>.csv|.parquet``) loaded into the ``raw`` schema of
DuckDB. Knows nothing of Dagster: the ingest asset (dagster_project.defs.assets.ingest) calls `find_drops` and
`ingest_entities`, the drop sensor `exports_fingerprint`.

Raw tables keep every value as text exactly as delivered (only trimmed, empty → NULL) plus lineage columns; typing
happens in dbt. Rows the CSV parser cannot read go to ``raw._quarantine``; every file load is logged in
``raw._ingest_log`` so that re-running is idempotent and a corrected re-delivery replaces its earlier rows.

DuckDB does the parsing and loading (streaming, parallel); Python only hashes the file, checks its encoding and line
ends in the same pass, reads the header line and, for GB18030 or UTF-16 files, transcodes to UTF-8 in chunks. Each
file load is one transaction, so the connection must not already be inside one. Paths are data, never SQL or
patterns: every value reaches DuckDB as a bound parameter.

What detection cannot know comes from the mapping file (`mapping`): column names, a header for a file without one,
the delimiter, decimal mark, date format, currency and grain. An orders or order-lines file whose rows are order
lines (an order id and a product on each row, and the order's customer or date) is loaded as order lines whichever
name it was dropped under; dbt derives its orders. Dates and decimal commas are interpreted per column of each file
after loading (`values`), and the choice is logged in ``raw._ingest_log``.

The modules, in the order a file meets them:

- `discovery`: which files are drops (the drop-folder rules) and which entity's table their rows go to;
- `export_file`: a file confined to the exports folder, and `IngestError`;
- `encodings`: the file's fingerprint (hash, encoding, line ends) and its UTF-8 copy;
- `sources`: the file as DuckDB reads it (CSV or Parquet);
- `layout`: its delimiter, header and how its columns map onto the raw table;
- `load`: the entry points, each file in its own transaction, skipped when already loaded;
- `file_load`: one file's load steps; `quarantine`, `values` (dates, decimal mark) and `order_values` (an order's
  values written on its lines) are steps of it;
- `raw_schema`: the raw tables, the ingest log and the quarantine;
- `currency_check`: once files are loaded, which ones' amounts name no currency;
- `mapping`: the mapping file.
"""

from dagster_project.ingest.currency_check import files_without_currency, lines_pricing_orders_without_currency
from dagster_project.ingest.discovery import (
    SUFFIXES, Drop, discover_drops, exports_fingerprint, find_drops, unread_files,
)
from dagster_project.ingest.export_file import IngestError
from dagster_project.ingest.load import INGEST_WORKERS, FileResult, Progress, ingest_entities, ingest_file
from dagster_project.ingest.mapping import MAPPING_FILE_NAME, EntityMapping, Mapping, MappingError, load_mapping
from dagster_project.ingest.raw_schema import RAW_SCHEMA, ensure_raw_schema

__all__ = [
    "INGEST_WORKERS",
    "MAPPING_FILE_NAME",
    "RAW_SCHEMA",
    "SUFFIXES",
    "Drop",
    "EntityMapping",
    "FileResult",
    "IngestError",
    "Mapping",
    "MappingError",
    "Progress",
    "discover_drops",
    "ensure_raw_schema",
    "exports_fingerprint",
    "files_without_currency",
    "lines_pricing_orders_without_currency",
    "find_drops",
    "ingest_entities",
    "ingest_file",
    "load_mapping",
    "unread_files",
]
