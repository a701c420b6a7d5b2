"""Publishing the warehouse for BI readers; knows nothing of Dagster.

- ``gate``: whether a refresh's marts are fit to publish at all (some paid order landed, no file mostly quarantined).
- ``publication``: the atomic replacement of the published DuckDB file and its Parquet / CSV exports.
"""
