# One Makefile for people and CI. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EVENTS ?= 5000
RATE   ?= 150
HEALTH_PORT ?= 8080

.DEFAULT_GOAL := help
.PHONY: help run test lint typecheck bench bench-backlog bench-rebalance bench-eos bench-outage bench-sweep bench-what-if clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml emulator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[demo,dev]' -e ./emulator
	touch $(STAMP)

run: $(STAMP)  ## the demo: local broker (Apache Kafka or Tansu) + emulator + one worker + a generated shop stream
	$(BIN)/talon-stream demo --events $(EVENTS) --rate $(RATE) --health-port $(HEALTH_PORT)

test: $(STAMP)  ## unit, conformance and end-to-end tests (real broker, real HTTP on loopback)
	$(BIN)/pytest

.PHONY: test-tansu
test-tansu: $(STAMP)  ## the end-to-end tests and the demo on the embedded Tansu broker (the zero-Java path)
	TALON_STREAM_TEST_BROKER=embedded $(BIN)/pytest tests/integration

lint: $(STAMP)  ## ruff over the whole tree
	$(BIN)/ruff check .
	$(BIN)/ruff format --check workers emulator

typecheck: $(STAMP)  ## mypy --strict on workers/ and emulator/
	$(BIN)/mypy workers emulator

.PHONY: deploy-check
deploy-check: $(STAMP)  ## offline checks of deploy/: Dockerfile, compose file, Kubernetes manifests
	$(BIN)/pytest -q tests/deploy

bench: $(STAMP)  ## throughput: naive, quix_streams, parallel_consumer and kafka_connect (real peers), partition_serial, talon_stream, ceiling
	$(BIN)/python bench/run.py

.PHONY: chaos
chaos: $(STAMP)  ## long chaos run (kill -9, outage, 429s, poison, bad key, rebalance, SIGTERM): one JSON line
	@$(BIN)/python bench/chaos.py

.PHONY: bench-profile
bench-profile: $(STAMP)  ## the worker's CPU by step (py-spy on make bench's talon_stream run; needs ptrace rights)
	$(BIN)/python bench/cpu_profile.py

bench-backlog: $(STAMP)  ## drain 1,000,000 events over 200,000 customers: peak RSS, cost per event
	$(BIN)/python bench/backlog.py

bench-rebalance: $(STAMP)  ## rebalance pause when a member leaves: classic vs KIP-848 consumer protocol
	$(BIN)/python bench/rebalance.py

bench-eos: $(STAMP)  ## exactly-once cost by transaction interval, beside at-least-once
	$(BIN)/python bench/transactions.py

bench-outage: $(STAMP)  ## calls per cart event after a 30 s Talon.One outage, coalescing on vs off
	$(BIN)/python bench/outage.py

bench-sweep: $(STAMP)  ## latency and key-count sweeps across the four contenders
	$(BIN)/python bench/sweep.py

bench-what-if: $(STAMP)  ## talon-stream what-if over 20,000 events: dry calls/s at --rate 200 and unthrottled, with its checks
	$(BIN)/python bench/what_if.py

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
