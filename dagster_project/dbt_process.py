"""`crm-dbt`: dbt as the refresh starts it, in the folder of the working database it builds.

dbt reuses its parse state (partial parsing) only while the profile is unchanged, and the profile holds the working
database's path. With the absolute path, the first build of every other warehouse (each test's, an as-of replay into
another folder, a second company's) parsed the whole project again: ~2.4 s of CPU. Started in the database's own folder, dbt gets
the file name alone, so warehouses whose working files share a name share a parse state. dbt finds its project and
profile through DBT_PROJECT_DIR and DBT_PROFILES_DIR (dagster-dbt sets both) and writes to the absolute target path
it is given; DuckDB keeps its write-ahead log and spill folder beside the file either way.

Only for the DuckDB target: Spark's profile holds no path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence

from dagster_project.settings import WORK_DATABASE_VARIABLE

# dbt/profiles.yml: the default target, when the command line names none.
TARGET_VARIABLE = "CRM_DBT_TARGET"


def target(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The profile target dbt will use: `--target` on the command line, else the profile's default."""
    for n, arg in enumerate(argv):
        if arg == "--target" and n + 1 < len(argv):
            return argv[n + 1]
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
    return environ.get(TARGET_VARIABLE) or "duckdb"


def enter_warehouse_folder(argv: Sequence[str], environ: MutableMapping[str, str]) -> None:
    """Change into the working database's folder and leave dbt's profile its file name (see the module)."""
    work = environ.get(WORK_DATABASE_VARIABLE, "")
    # (No folder yet: the command's manifest is prepared before the first refresh creates it.)
    if target(argv, environ) != "duckdb" or not os.path.isabs(work) or not os.path.isdir(os.path.dirname(work)):
        return
    os.chdir(os.path.dirname(work))
    environ[WORK_DATABASE_VARIABLE] = os.path.basename(work)


def main() -> None:
    enter_warehouse_folder(sys.argv[1:], os.environ)
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"
    sys.exit(cli())
