# The two entry points a user needs: `make demo` and `make test`.
# Both install what they need (apt-get for system packages, pip into .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/.data
PORT ?= 8080
SYSTEM_PACKAGES := postgresql openssl iproute2 procps iputils-ping containernetworking-plugins redis-server rabbitmq-server clang llvm libbpf-dev bpftool

.PHONY: demo stop test lint typecheck unit venv system-deps clean bench bpf

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

# Installs only what is missing, so repeated runs stay fast.
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The tc-BPF datapath of the VNF fast paths, compiled here and never committed;
# the build skips it when the object is newer than its sources.
bpf: venv system-deps
	$(BIN)/python -m vnfs.sdk.bpf.build

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy .

unit: venv system-deps bpf
	$(BIN)/pytest -q

test: lint typecheck unit

demo: venv system-deps bpf
	DATA_DIR=$(DATA_DIR) PORT=$(PORT) $(BIN)/python -m nfvo.demo

stop: venv
	DATA_DIR=$(DATA_DIR) $(BIN)/python -m nfvo.demo --stop

# Traffic generators only the benchmarks use.
BENCH_PACKAGES := iperf3 netsniff-ng

bench: venv system-deps bpf
	@$(MAKE) --no-print-directory system-deps SYSTEM_PACKAGES="$(BENCH_PACKAGES)"
	$(BIN)/python bench/onboarding.py --runs 9
	$(BIN)/python bench/vim_local.py --runs 5
	$(BIN)/python bench/lcm.py --runs 5
	$(BIN)/python bench/ns.py --runs 5
	$(BIN)/python bench/fastpath.py --runs 3

clean:
	rm -rf $(VENV) $(DATA_DIR) build vnfs/sdk/bpf/build *.egg-info .mypy_cache .ruff_cache .pytest_cache
