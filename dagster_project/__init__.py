"""CRM analytics warehouse: CRM export drops -> DuckDB -> dbt marts -> customer analytics, orchestrated by Dagster."""
