"""`crm-dbt`: dbt as the refresh starts it, in the folder of the working database it builds.

dbt reuses its parse state (partial parsing) only while the profile is unchanged, and the profile holds the working
database's path. With the absolute path, the first build of every other warehouse (each test's, an as-of replay
into another folder, a second company's) parsed the whole project again: ~2.4 s of CPU. Started in the database's
own folder, dbt gets the file name alone, so warehouses whose working files share a name share a parse state.
DuckDB keeps its write-ahead log and spill folder beside the file either way.

Only when nothing else dbt is given is relative: the refresh (through dagster-dbt) passes the project, profiles,
target and log folders as absolute paths, and a relative one would now resolve against the warehouse folder. So
`cd dbt && crm-dbt build --project-dir .` is plain dbt. And only for the DuckDB target: Spark's profile holds no path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence

from dagster_project.settings import WORK_DATABASE_VARIABLE

# dbt/profiles.yml: the default target, when neither the command line nor dbt's own DBT_TARGET names one.
PROFILE_TARGET_VARIABLE = "CRM_DBT_TARGET"
# dbt's folders, as flags and as dbt's environment variables: all must be absolute before dbt moves.
PATH_FLAGS = {"--project-dir": "DBT_PROJECT_DIR", "--profiles-dir": "DBT_PROFILES_DIR",
              "--target-path": "DBT_TARGET_PATH", "--log-path": "DBT_LOG_PATH"}


def _flag(argv: Sequence[str], *names: str) -> str | None:
    for n, arg in enumerate(argv):
        if arg in names and n + 1 < len(argv):
            return argv[n + 1]
        for name in names:
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def target(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The profile target dbt will use: `--target`/`-t`, else DBT_TARGET, else the profile's default."""
    return (_flag(argv, "--target", "-t") or environ.get("DBT_TARGET") or environ.get(PROFILE_TARGET_VARIABLE)
            or "duckdb")


def profile_path(work: str) -> str:
    """The working database's path as the profile gets it from `crm-dbt` (the file name, once its folder exists)."""
    work = os.path.abspath(work)
    return os.path.basename(work) if os.path.isdir(os.path.dirname(work)) else work


def _folders_absolute(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether dbt finds its project and profile, and writes its target and logs, wherever it runs."""
    for flag, variable in PATH_FLAGS.items():
        value = _flag(argv, flag) or environ.get(variable)
        if value is None and flag in ("--project-dir", "--profiles-dir"):
            return False  # dbt would look in the folder it runs in
        if value is not None and not os.path.isabs(value):
            return False
    return True


def enter_warehouse_folder(argv: Sequence[str], environ: MutableMapping[str, str]) -> None:
    """Change into the working database's folder and leave dbt's profile its file name (see the module)."""
    work = environ.get(WORK_DATABASE_VARIABLE, "")
    if target(argv, environ) != "duckdb" or not os.path.isabs(work) or not _folders_absolute(argv, environ):
        return
    path = profile_path(work)
    if path == work:
        return  # no folder yet: the command's manifest is prepared before the first refresh creates it
    os.chdir(os.path.dirname(work))
    environ[WORK_DATABASE_VARIABLE] = path


def main() -> None:
    enter_warehouse_folder(sys.argv[1:], os.environ)
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"
    sys.exit(cli())
