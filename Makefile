# Two commands: `make demo` (set up, run the end-to-end demo, write cfx-report/index.html)
# and `make test` (set up with the dev extra, lint, type-check, run the tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) torch torchvision
	$(PIP) -e .
	touch $@

# Debian's chromium for the labelling page's browser test (skipped, not failed, without it).
# Playwright drives it over its own protocol (no chromium-driver); headless with --no-sandbox
# --disable-gpu it needs none of the recommended packages (systemd, perl, samba, avahi, cups
# helpers: 131 packages were installed with them)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
APT  := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]'
	test -x /usr/bin/chromium \
	  || ($(APT) update -qq && $(APT) install -y -qq --no-install-recommends chromium) \
	  || echo "chromium not installed: the labelling page browser test will be skipped"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/cfx demo --out cfx-report

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check cfx tests benchmarks
	$(BIN)/ruff format --check cfx tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# pytest-xdist: one test file per worker (module fixtures built once), one torch thread per
# worker: two workers of two OpenMP threads each on two cores ran over twice as slow as one
# process; two of one thread each took 640 s where one process of two took 942 s
PYTEST_WORKERS ?= 2

pytest: $(VENV)/.installed-dev
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/data.py

clean:
	rm -rf $(VENV) cfx-report build dist *.egg-info
