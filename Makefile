# nfw-lab: `make lab-up` sets up everything and starts the lab; `make test` runs the tests.
VENV   ?= .venv
PYTHON ?= python3
NAME   ?= default
# TOPOLOGY: a name in topologies/ or a file (DESIGN= is its older name)
DESIGN ?= nat-first
TOPOLOGY ?= $(DESIGN)
BIN     = $(VENV)/bin

.PHONY: host venv images lab-up lab-down status test unit integration lint site demo docs bench soak clean
.DEFAULT_GOAL := help

help:
	@echo "make lab-up      install what is missing, build the images, start the lab (TOPOLOGY=$(TOPOLOGY))"
	@echo "make demo        walk the scenario: nat-first, then firewall-first (DEMO_FLAGS=--no-pause)"
	@echo "make docs        redraw the diagrams and live view screenshot (docs/)"
	@echo "make site        build the documentation site (mkdocs --strict, into .site/)"
	@echo "make lint        ruff and mypy"
	@echo "make bench       benchmarks P1-P9, table + bench/results/latest.json (BENCH_FLAGS=--quick)"
	@echo "make soak        $(SOAK_MINUTES) minutes of traffic: what grows, alerts against blocked requests (SOAK_MINUTES=)"
	@echo "make lab-down    remove the lab (containers, links, state)"
	@echo "make test        the whole test suite (unit + real-lab integration; TEST_WORKERS=2 labs at once)"
	@echo "make unit        unit tests only (no Docker, no root)"

host:
	bash scripts/install-host.sh

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

venv: $(BIN)/.installed

images: host venv
	$(BIN)/nfwlab build

lab-up: images
	@if $(BIN)/nfwlab --name $(NAME) status >/dev/null 2>&1; then \
	  echo "lab $(NAME) is already up:"; $(BIN)/nfwlab --name $(NAME) status; \
	else $(BIN)/nfwlab --name $(NAME) up --topology $(TOPOLOGY); fi

lab-down: venv
	$(BIN)/nfwlab --name $(NAME) down

status: venv
	$(BIN)/nfwlab --name $(NAME) status

unit: venv
	$(BIN)/pytest -q tests/unit

# Each pytest-xdist worker runs a lab of its own; most of a lab test's time is spent waiting on packets.
TEST_WORKERS ?= 2

integration: images
	TESTCONTAINERS_RYUK_DISABLED=true $(BIN)/pytest -q -n $(TEST_WORKERS) tests/integration

# Tests marked `alone` (a Docker daemon restart stops every lab) run after the rest, by themselves.
test: images
	TESTCONTAINERS_RYUK_DISABLED=true $(BIN)/pytest -q -n $(TEST_WORKERS) -m "not alone"
	TESTCONTAINERS_RYUK_DISABLED=true $(BIN)/pytest -q -m alone

lint: venv
	$(BIN)/ruff check lab tests bench compose docs/hooks
	$(BIN)/mypy

site: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

demo: venv
	NFWLAB=$(BIN)/nfwlab bash scripts/demo.sh --name $(NAME) $(DEMO_FLAGS)

bench: host venv images
	$(BIN)/python bench/run.py $(BENCH_FLAGS)

# A bounded long run: mixed allowed and blocked traffic, what grows, every blocked request against its alert.
SOAK_MINUTES ?= 30

soak: host venv images
	$(BIN)/python bench/soak.py --minutes $(SOAK_MINUTES) $(SOAK_FLAGS)

docs: host venv images
	NFWLAB=$(BIN)/nfwlab bash scripts/docs.sh

clean: lab-down
	rm -rf $(VENV)
