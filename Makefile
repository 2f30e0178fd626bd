# Two commands for a new machine: `make demo` and `make test`. Everything else
# here is a step of those two.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# A stamp, not $(PY): the venv's python is a symlink, and make and touch would
# follow it to the base interpreter.
VENV_STAMP := $(VENV)/.requirements-installed
LAB_STATE ?= .lab
COLLECTION_LINK := .collections/ansible_collections/trm/maintenance
SANITY_BASE ?= build/sanity
SANITY_ROOT := $(SANITY_BASE)/ansible_collections/trm/maintenance
PYTEST_ARGS ?=
SANITY_ARGS ?=

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

BENCH ?= redis tls mongo backup k8s

.PHONY: bench help demo test venv lab-deps lab-up lab-down lab-status sanity lint unit \
	integration changelog-lint clean

help:
	@echo "make demo   start the local lab, run the daily checks, print the report"
	@echo "make test   sanity, lint, unit and integration tests (starts its own lab)"

# The OS packages come first: Debian's python3 builds no virtual environment
# without python3-venv.
$(VENV_STAMP): requirements.txt requirements-test.txt
	PYTHON=$(PYTHON) ./scripts/install-os-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-test.txt
	@touch $(VENV_STAMP)

venv: $(VENV_STAMP) $(COLLECTION_LINK)

$(COLLECTION_LINK):
	mkdir -p $(dir $(COLLECTION_LINK))
	ln -sfn ../../.. $(COLLECTION_LINK)

lab-deps:
	PYTHON=$(PYTHON) ./scripts/install-os-packages.sh

lab-up: venv lab-deps
	$(PY) -m lab --state-dir $(LAB_STATE) up

lab-down:
	@if [ -x $(PY) ]; then $(PY) -m lab --state-dir $(LAB_STATE) down; fi

lab-status: venv
	$(PY) -m lab --state-dir $(LAB_STATE) status

demo: venv lab-deps
	@rc=0; $(PY) -m lab --state-dir $(LAB_STATE) up || rc=$$?; \
	if [ $$rc -eq 0 ]; then \
	  $(BIN)/ansible-playbook playbooks/daily.yml -i inventories/lab || rc=$$?; \
	  report=$$(ls -td reports/*-daily 2>/dev/null | head -n 1); \
	fi; \
	$(PY) -m lab --state-dir $(LAB_STATE) down; \
	if [ -n "$$report" ]; then \
	  echo; echo "== Maintenance log: $$report/maintenance-log.md"; echo; \
	  cat "$$report/maintenance-log.md"; echo; \
	  echo "Also in $$report: maintenance-log.json, junit.xml, maintenance-log.html"; \
	fi; \
	exit $$rc

test: venv lab-deps sanity lint changelog-lint unit integration

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

changelog-lint: venv
	$(BIN)/antsibull-changelog lint

unit: venv
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

integration: venv lab-deps
	$(PY) -m pytest tests/integration -q $(PYTEST_ARGS)

# ansible-test needs the collection under ansible_collections/<namespace>/<name>;
# it gets a clean copy of the files git knows (tracked or not ignored).
sanity: venv
	rm -rf $(SANITY_BASE)
	./scripts/copy-git-files.sh $(SANITY_ROOT)
	cd $(SANITY_ROOT) && git init -q && git add -A >/dev/null 2>&1 && \
	  $(CURDIR)/$(BIN)/ansible-test sanity --venv \
	  --python $$($(CURDIR)/$(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
	  $(SANITY_ARGS)

# Benchmarks are not tests: each prints a table with ratios against the
# alternative a user would pick. `make bench BENCH=tls` runs one.
bench: venv lab-deps
	$(BIN)/pip install --quiet -r requirements-bench.txt
	@for name in $(BENCH); do echo "== bench/$$name"; $(PY) -m bench.$$name.run || exit 1; done

clean: lab-down
	rm -rf build .collections .pytest_cache reports
