# `make demo` and `make test` do all set-up themselves: each creates or refreshes .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

venv: $(STAMP)

# torch 2.13.0 first: the CPU wheel, so the range in pyproject is already met and no CUDA build is pulled.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[text,tune,calibrate,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tsmoe demo --out runs/demo --overwrite

# Debian's chromium renders the run reports in a test; without it (not root, no apt) that test skips.
test: $(STAMP)
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && apt-get update -qq >/dev/null 2>&1 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } || \
		echo "chromium is not installed: the report's browser test will skip"
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
