# Two entry points: `make run` (every notebook at the quick scale + the HTML report) and `make test`.
# Both build .venv themselves; CPU torch is installed first so no CUDA build is ever pulled.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0
SCALE   ?= quick
STAMP   := $(VENV)/.installed

.PHONY: setup run test unit notebooks report bench test-gpu sync clean shots

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (companion)" >/dev/null
	$(BIN)/companion data fetch movielens
	$(BIN)/companion data fetch nasbench-graph
	$(BIN)/companion data fetch lcdb
	touch $(STAMP)

run: setup
	$(BIN)/companion run --all --scale $(SCALE); status=$$?; $(BIN)/companion report; exit $$status

report: setup
	$(BIN)/companion report

# make test runs each notebook once: nbval executes it (writing its results under .nbval_runs/), then the
# headline-pin test compares those results with tests/pins/ instead of running every notebook again.
NBVAL_RUNS := $(CURDIR)/.nbval_runs

test: setup
	$(BIN)/python -m pytest -q tests --ignore=tests/test_headline_pins.py
	rm -rf $(NBVAL_RUNS)
	COMPANION_RUNS_ROOT=$(NBVAL_RUNS) $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks
	PIN_SOURCE=$(NBVAL_RUNS) $(BIN)/python -m pytest -q tests/test_headline_pins.py

unit: setup
	$(BIN)/python -m pytest -q tests

notebooks: setup
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

test-gpu: setup
	$(BIN)/python -m pip install --quiet -e ".[cuda]"
	$(BIN)/python -m pytest -q -m gpu tests
	$(BIN)/python benchmarks/gpu_check_mamba.py

bench: setup
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Headless-Chromium screenshots of the report and of every latest executed notebook, to look at the pages.
CHROME  ?= chromium
shots: report
	mkdir -p outputs/shots
	for f in outputs/index.html outputs/*/latest/*.html; do [ -f "$$f" ] || continue; \
	  name=$$(echo $$f | sed 's|outputs/||; s|/latest/|-|; s|/|-|g; s|\.html$$||'); \
	  $(CHROME) --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
	    --disable-sync --no-first-run --user-data-dir=$$(mktemp -d) --window-size=1400,2000 \
	    --screenshot=$(CURDIR)/outputs/shots/$$name.png "file://$(CURDIR)/$$f" >/dev/null 2>&1 || exit 1; done
	@echo "screenshots in outputs/shots/"

sync: setup
	$(BIN)/jupytext --sync notebooks/src/*.py

clean:
	rm -rf $(VENV) outputs/*/ outputs/index.html
