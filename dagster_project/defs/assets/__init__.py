"""Dagster assets, one module per concern: ingestion, dbt models, analytics."""
