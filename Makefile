# Làng Số Hub. Two commands do all the set-up on Debian 12 / Raspberry Pi OS:
#   make run    install what is missing, then run the hub with a local Mosquitto and a
#               simulated village, and print the dashboard address
#   make test   install what is missing, then run every check (lint, types, tests)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# System packages the hub and its tests use (Debian names).
SYSTEM_PACKAGES := mosquitto mosquitto-clients espeak-ng ffmpeg alsa-utils sox python3-venv \
	gammu gammu-smsd
TEST_PACKAGES := collectd-core sqlite3 shellcheck chromium fail2ban faketime gcc snapserver snapclient
STAMP := $(VENV)/.installed

.PHONY: run test bench system-deps lint typecheck pytest clean

system-deps:
	@bash deploy/install-system-packages.sh $(SYSTEM_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: system-deps $(STAMP)
	@bash deploy/dev-run.sh

test: system-deps $(STAMP)
	@bash deploy/install-system-packages.sh $(TEST_PACKAGES)
	$(MAKE) --no-print-directory lint typecheck pytest

lint:
	shellcheck deploy/*.sh deploy/node/*.sh
	$(BIN)/ruff check hub devices audio tests bench
	$(BIN)/ruff format --check hub devices audio tests bench

typecheck:
	$(BIN)/mypy

# Two workers, one test file each at a time (module fixtures stay in one process): the
# suite waits on brokers, hubs and audio far more than it computes.
pytest:
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile

bench: system-deps $(STAMP)
	@for b in bench/*.py; do echo "# $$b" >&2; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
