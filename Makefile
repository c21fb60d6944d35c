# Two entry points for a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup reproduce test bench crosscheck clean chromium

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

reproduce: $(STAMP)
	$(BIN)/internalize reproduce --quick --results results

# The package's layers are checked first (import-linter, contracts in pyproject.toml). Test files
# then run side by side on every core (pytest-xdist); a file's tests stay together, so its
# module fixtures (e.g. one tiny reproduction shared by several tests) run once.
# The browser tests drive Debian's chromium with Playwright (its own browser download cannot
# reach the network here); it is installed when missing and apt is there.
SUDO := $(shell [ "$$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && echo sudo; })
chromium:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 \
	  || $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 \
	  || { $(SUDO) apt-get update -q >/dev/null 2>&1 && $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1; } \
	  || echo "warning: could not install chromium; the browser tests will fail"

test: $(STAMP) chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n auto --dist loadfile

bench: $(STAMP)
	$(BIN)/internalize bench

# Optional: the imitation library's AIRL beside ours on one small case (docs/reward_learners.md).
# imitation pins gymnasium 0.29 and Stable-Baselines3 2.2, so it gets a venv of its own; pip
# resolves torch from the registry (a CPU wheel on disk may be installed first instead).
crosscheck: $(STAMP)
	test -x .crosscheck-venv/bin/python || $(PYTHON) -m venv .crosscheck-venv
	.crosscheck-venv/bin/pip install -q imitation==1.0.1
	.crosscheck-venv/bin/pip install -q -e .
	.crosscheck-venv/bin/python tools/crosscheck/airl_imitation.py
	$(BIN)/python tools/crosscheck/airl_ours.py --seeds 3

clean:
	rm -rf $(VENV) results
