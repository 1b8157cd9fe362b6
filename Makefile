# Two commands on a fresh machine: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# The Dagster UI's port for `make dev` (`make dev PORT=3300`).
PORT ?= 3000

.PHONY: install demo test test-fast dev bench clean notebook notebook-run

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch==2.13.0 (CPU) first, from the local wheel where the machine has one.
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[ml,api,test,dev,bench,notebook]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/crypto-assets demo

# Two pytest workers (pytest-xdist), one test file per worker at a time: the daemon tests spend most
# of their minutes waiting on Dagster's crons, so two files side by side cut the suite by about a
# third here (27 -> 18 min on a loaded 2-core machine).
PYTEST_WORKERS ?= -n 2 --dist loadfile

test: install
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS)

# The edit-test loop (a few minutes): every test except those marked `slow` (real servers, daemons,
# processes, Dagster runs of seconds). CI runs `make test`.
test-fast: install
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS) -m 'not slow'

# Started from DAGSTER_HOME: `dg dev` warns about a dagster.yaml in its working folder that is not
# the instance's (ours is the template copied into DAGSTER_HOME).
dev: install $(DAGSTER_HOME)/dagster.yaml
	cd $(DAGSTER_HOME) && $(CURDIR)/$(BIN)/dg dev -w $(CURDIR)/workspace.yaml --port $(PORT)

# The example notebook on the warehouse of DAGSTER_HOME (after `make demo`): open it in JupyterLab,
# or execute it top to bottom into $(DAGSTER_HOME)/explore_features.executed.ipynb.
NOTEBOOK := notebooks/explore_features.ipynb
NOTEBOOK_PORT ?= 8888
# JupyterLab refuses to start as root (containers, CI machines) unless told it may.
notebook: install
	$(BIN)/jupyter lab --port $(NOTEBOOK_PORT) $(if $(filter 0,$(shell id -u)),--allow-root,) $(NOTEBOOK)

notebook-run: install
	$(BIN)/jupyter nbconvert --to notebook --execute $(NOTEBOOK) --output-dir $(DAGSTER_HOME) \
		--output explore_features.executed.ipynb

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .dagster_home
