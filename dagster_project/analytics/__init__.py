"""Pure analytics functions (pandas / DuckDB in, pandas out). Dagster wrappers live in ``dagster_project.defs.assets``."""
