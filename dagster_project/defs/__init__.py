"""The Dagster side of the warehouse, in one place: assets (thin wrappers over the domain packages beside this one),
asset checks, the warehouse resource, the job, schedule and sensor, the instance settings, the definitions, and the
in-process refresh the CLI runs. Nothing outside this package imports Dagster, except the CLI through it."""
