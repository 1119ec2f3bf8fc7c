# Two commands are all a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-unit test-fast lint format sample-models bench clean schema runtime-check

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

sample-models: install
	$(PY) -m compressctl.model.samples --out sample_models

demo: install
	@test -f sample_models/digits.npz && test -d sample_models/lenet5_digits || $(PY) -m compressctl.model.samples --out sample_models
	$(VENV)/bin/compressctl run recipes/deep-compression.yaml --out runs/demo

# Two test processes (pytest-xdist); the Ray search tests share one of them (xdist_group "ray").
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# The tier that never imports TensorFlow: recipes, schema, gates, compare, rendering; seconds.
test-unit: install
	$(PY) -m pytest -q -m unit

test-fast: install
	$(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadgroup

# A benchmark, not a test: figures go to benchmarks/RESULTS.md and benchmarks/results.json.
bench: install
	$(PY) benchmarks/run.py

# Loads and invokes every artifact of the run directories RUN=... with tflite-runtime 2.14, the
# runtime many edge boards ship, in an isolated venv (it needs NumPy < 2; the main venv has NumPy 2).
# The result joins artifacts[].runtime.checked in each report.json.
# tflite-runtime 2.14 has wheels for Python 3.8-3.11 only: a python3.11 on PATH is preferred.
RUNTIME_VENV := .venv-tflite-runtime
RUNTIME_PYTHON ?= $(shell command -v python3.11 || echo $(PYTHON))
$(RUNTIME_VENV)/.installed:
	test -x $(RUNTIME_VENV)/bin/python || $(RUNTIME_PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install -q "tflite-runtime==2.14.*" "numpy<2"
	touch $@

runtime-check: install $(RUNTIME_VENV)/.installed
	@test -n "$(RUN)" || { echo "usage: make runtime-check RUN='runs/a runs/b'"; exit 2; }
	$(PY) -m compressctl.run.runtime_check --python $(RUNTIME_VENV)/bin/python $(RUN)

# The recipe JSON Schema for editors, the recipe reference and report.json's JSON Schema, all
# generated from the code (tests/test_recipe_docs.py and tests/test_record.py fail when one is out of date).
schema: install
	$(VENV)/bin/compressctl schema > recipes/recipe.schema.json
	$(PY) -m compressctl.recipe.docs docs/recipes.md
	$(VENV)/bin/compressctl schema --report > docs/report.schema.json

lint: install
	$(VENV)/bin/ruff check compressctl tests benchmarks
	$(VENV)/bin/ruff format --check compressctl tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff format compressctl tests benchmarks
	$(VENV)/bin/ruff check --fix compressctl tests benchmarks

clean:
	rm -rf runs benchmarks/out build *.egg-info .pytest_cache .ruff_cache
