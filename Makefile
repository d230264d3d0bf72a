# Orbit CRM. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv is bootstrapped with pip on a machine that lacks it; `python3 -m uv` runs it
# whether pip put it in the interpreter's site-packages or in ~/.local.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export PYTHONSAFEPATH := 1
export UV_LINK_MODE := copy
PACKAGES := platform tenants billing plugins frontend

.PHONY: help uv sync run test lint fmt typecheck-tree browser bench i18n clean chart-test chart-render image

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

# Debian's (and other distributions') python3 refuses `pip install` outside a venv
# (PEP 668, "externally-managed-environment"); then uv goes into ~/.local only, which
# --break-system-packages allows without touching the system's packages.
uv: ## install uv with pip when it is missing (into ~/.local on a distribution's python3)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
	  || python3 -m pip install --quiet uv 2>/dev/null \
	  || python3 -m pip install --quiet --user --break-system-packages uv \
	  || { echo "make: could not install uv with pip; install python3-pip, or uv itself (https://docs.astral.sh/uv/)" >&2; exit 1; }

sync: uv ## create .venv from uv.lock (runtime and dev dependencies)
	@$(UV) sync --frozen --quiet

run: sync ## serve http://127.0.0.1:8000 (embedded PostgreSQL and Valkey unless DATABASE_URL/REDIS_URL are set)
	$(UV) run --frozen orbit run

test: sync browser lint ## lint, then the whole test suite (real PostgreSQL, Redis and chromium)
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: sync typecheck-tree ## ruff, ruff format --check and mypy --strict
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy -p orbit

fmt: sync ## format and auto-fix
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

# mypy maps modules to paths one to one; this tree gives it orbit.* → the card's folders.
typecheck-tree:
	@mkdir -p build/typecheck/orbit
	@for d in $(PACKAGES); do ln -sfn ../../../$$d build/typecheck/orbit/$$d; done

browser: ## install Debian's chromium for the browser tests when it is missing
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

chart-test: sync ## render, lint and validate helm/orbit for every value set; check the Containerfile
	$(UV) run --frozen pytest -q tests/unit/ops $(PYTEST_ARGS)

chart-render: sync ## print helm/orbit's manifests for the default values (VALUES=file.yaml to add a values file)
	@$(UV) run --frozen python -c "import sys, pathlib, helm_python as h; \
	  v = h.values_from_yaml(pathlib.Path(sys.argv[1]).read_text()) if sys.argv[1:] else {}; \
	  c = h.Chart.load('helm/orbit'); c.validate_schema(v); \
	  print('\n---\n'.join(t for n, t in sorted(c.render(v, name='orbit', namespace='orbit').items()) if t.strip()))" $(VALUES)

image: ## build the container image with podman or docker (IMAGE=orbit:dev)
	$$(command -v podman || command -v docker) build -f Containerfile -t $${IMAGE:-orbit:dev} .

# BENCH_SCALE=0.01 for a quick look; the issue's targets are for scale 1 (1M contacts).
BENCH_SCALE ?= 1
bench: sync ## plugin dispatch overhead, then 1M contacts timed against raw SQL; tables of targets met or missed
	$(UV) run --frozen python bench/plugin_dispatch.py
	$(UV) run --frozen python bench/invoice_pdf.py
	PYTHONPATH=$(CURDIR) $(UV) run --frozen python -m bench.invoice_finalize
	PYTHONPATH=$(CURDIR) $(UV) run --frozen python -m bench.run --scale $(BENCH_SCALE) $(BENCH_ARGS)
	PYTHONPATH=$(CURDIR) $(UV) run --frozen python -m bench.email_marketing
	PYTHONPATH=$(CURDIR) $(UV) run --frozen python -m bench.projects

i18n: sync ## extract user-facing strings into frontend/locale/orbit.pot
	$(UV) run --frozen pybabel extract -F babel.cfg -o frontend/locale/orbit.pot .

clean: ## remove build output and caches (keeps .orbit data)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache test-artifacts
