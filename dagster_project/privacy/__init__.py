"""Who can read what, on disk and over time (docs/security.md); knows nothing of Dagster.

- ``modes``: owner-only files for personal data and secrets whatever the umask, the configured mode for what BI
  readers get;
- ``secret``: the pseudonym secret, and keyed hashes computed in DuckDB with it;
- ``erasure``: `crm-warehouse forget` requests, applied by the next refresh to every layer, with tombstones that
  quarantine a later re-delivery and an audit table without personal data;
- ``retention``: how long personal values that no longer serve the warehouse stay in the working database;
- ``compaction``: the working database rebuilt into a fresh file, so erased values are not left in free blocks.
"""
