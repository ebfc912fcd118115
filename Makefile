# One entry point for installing, serving, testing and benchmarking.
#   make serve  - install everything and start the service on the embedded default
#   make test   - install everything and run the whole test suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: install system-deps emoji-data ui-assets services serve test lint typecheck bench-cost bench-continual bench-continual-quick clean

system-deps:
	@bash scripts/install-system-deps.sh

# Emoji artwork and names (pinned npm packages) into data/emoji/ (git-ignored).
emoji-data:
	@bash scripts/fetch-emoji-data.sh

# Swagger UI, ReDoc and Chart.js (pinned npm packages) into service/webui/vendor/ (git-ignored):
# /docs, /redoc and /ui load them from the API process, never from a CDN.
ui-assets:
	@bash scripts/fetch-ui-assets.sh

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# CPU torch from local disk first: a bare torch requirement would pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	# constraints.txt pins every other dependency to the versions the results were made with.
	$(PIP) install --quiet -c constraints.txt -e ".[dev,standin]"
	# animal-mnist's own dependencies pull tensorflow; only its data files are used.
	$(PIP) install --quiet --no-deps animal-mnist==0.4
	touch $(STAMP)

install: system-deps emoji-data ui-assets $(STAMP)

services:
	@bash scripts/ensure-services.sh

serve: install
	$(VENV)/bin/vlmc serve

test: install services
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check catalogue service workers standin tests bench migrations
	$(VENV)/bin/ruff format --check catalogue service workers standin tests bench migrations

typecheck: install
	$(VENV)/bin/mypy catalogue service workers standin

bench-cost: install
	$(PY) -m bench.cost.run

bench-continual: install
	$(PY) -m bench.continual.run

bench-continual-quick: install
	$(PY) -m bench.continual.run --quick

clean:
	rm -rf $(VENV) var .pytest_cache
