"""The manager's HTML report: headline figures, charts, the churn watchlist and data quality, in English or
Simplified Chinese, built by pure functions from any warehouse DuckDB connection (`render.build_report`); the
Dagster asset (`assets/reporting.py`) and `crm-warehouse report` are thin wrappers. Kept free of imports so the
CLI can name the languages without loading plotly."""
