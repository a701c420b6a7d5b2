"""The console scripts (pyproject.toml). Each imports its command only once the process is set to exit without the
interpreter's teardown (dagster_project.process_environment.exit_skipping_teardown), so that every exit handler the
command's imports register still runs before the process ends."""

from __future__ import annotations

from typing import NoReturn

from dagster_project.process_environment import exit_skipping_teardown


def crm_warehouse() -> NoReturn:
    def main() -> int:
        from dagster_project.cli import main

        return main()

    exit_skipping_teardown(main)


def crm_dbt() -> NoReturn:
    def main() -> None:
        from dagster_project.dbt_process import main

        main()

    exit_skipping_teardown(main)
