# Two commands do everything on a fresh machine:
#   make demo   set up, generate the embedded sample export, run the full refresh into warehouse/crm.duckdb
#   make test   set up, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXPORTS ?= data/exports
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The CJK font the report embeds and the metadata charts draw Chinese with (dagster_project/report/fonts.py): Debian's
# fonts-wqy-microhei, unpacked into the virtual environment, not installed system-wide.
CJK_FONT_DIR := $(VENV)/share/crm-fonts
CJK_FONT := $(CJK_FONT_DIR)/wqy-microhei.ttc
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := False

.PHONY: setup browser java demo test test-cluster dev bench clean

setup: $(VENV)/.installed $(CJK_FONT)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# statsforecast and fugue declare pandas<3, which the pinned pandas 3 refuses; see pyproject.toml.
	$(BIN)/pip install --quiet --no-deps statsforecast==2.1.1 fugue==0.9.7
	cd dbt && CRM_WORK_DATABASE=$(CURDIR)/warehouse/crm.work.duckdb ../$(BIN)/dbt parse --quiet --profiles-dir . --project-dir .
	@# The dbt docs site, one offline file: dbt/target/static_index.html (docs/bi.md). It opens the working database
	@# for the catalog, so its folder must exist.
	mkdir -p warehouse
	cd dbt && CRM_WORK_DATABASE=$(CURDIR)/warehouse/crm.work.duckdb ../$(BIN)/dbt docs generate --static --quiet --profiles-dir . --project-dir .
	touch $@

# apt-get download fetches the package file only (no root needed unless the package lists must be updated first);
# dpkg -x unpacks it into a scratch folder, and the font file and its copyright are copied into the environment.
$(CJK_FONT): | $(VENV)/.installed
	rm -rf $(CJK_FONT_DIR).tmp && mkdir -p $(CJK_FONT_DIR).tmp
	cd $(CJK_FONT_DIR).tmp && (apt-get download fonts-wqy-microhei 2>/dev/null || \
		($(SUDO) apt-get update && apt-get download fonts-wqy-microhei))
	dpkg -x $(CJK_FONT_DIR).tmp/fonts-wqy-microhei_*.deb $(CJK_FONT_DIR).tmp/root
	mkdir -p $(CJK_FONT_DIR)
	cp $(CJK_FONT_DIR).tmp/root/usr/share/doc/fonts-wqy-microhei/copyright $(CJK_FONT_DIR)/wqy-microhei.copyright
	cp $(CJK_FONT_DIR).tmp/root/usr/share/fonts/truetype/wqy/wqy-microhei.ttc $@.part && mv $@.part $@
	rm -rf $(CJK_FONT_DIR).tmp

demo: setup
	@test -d $(EXPORTS) || $(BIN)/crm-warehouse generate --out $(EXPORTS)
	$(BIN)/crm-warehouse refresh --exports $(EXPORTS)

# The Spark engine's extra (pyspark, dbt-spark), for its equivalence test: only the tests install it. The DuckDB
# default needs neither it nor Java, and with PySpark installed every Great Expectations import loads part of it.
$(VENV)/.spark-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	touch $@

# Two workers for the two cores (most tests wait on one single-threaded dbt or Dagster process); a module's tests
# stay in one worker so module fixtures are built once, and the longest modules start first (tests/conftest.py).
test: setup $(VENV)/.spark-installed browser java
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15

# The Spark engine on a Spark Thrift server, started from PySpark's jars (tests/test_spark_cluster.py): not part of
# `make test`, whose Spark equivalence test already builds every model on Spark.
test-cluster: setup $(VENV)/.spark-installed java
	$(BIN)/pytest -m cluster --durations=15

# The Spark equivalence test runs PySpark's own Spark, which needs a Java 17 runtime.
java:
	@command -v java >/dev/null || ($(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openjdk-17-jre-headless)

# tests/test_report.py opens the HTML report in Debian's Chromium, driven by playwright (no browser download).
browser:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

# The Dagster UI has no login: it listens on this machine only. To reach it from elsewhere, put a reverse proxy with
# authentication in front of it rather than widening DAGSTER_HOST (docs/security.md). Umask 077: the instance's run
# storage and whatever a run started from the UI writes are owner-only, as in a CLI refresh.
DAGSTER_HOST ?= 127.0.0.1
DAGSTER_PORT ?= 3000

dev: setup
	umask 077 && $(BIN)/dagster dev -w workspace.yaml --host $(DAGSTER_HOST) --port $(DAGSTER_PORT)

# Stage by stage through the Dagster job, then the refresh a user runs: full, one daily drop, nothing new (S and M;
# add --sizes L for the large size).
bench: setup
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/daily.py --reuse-export

clean:
	rm -rf $(VENV) dbt/target dbt/logs warehouse data .dagster_home
