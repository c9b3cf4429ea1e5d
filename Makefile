# The whole set-up on a fresh machine is `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench rehearse test-rehearsal clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dualwrite demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest --durations=15

bench: $(STAMP)
	$(BIN)/python -m bench

# The SAM stack deployed to a private ministack and driven through the README's "Deploy to
# AWS" order (rehearse/); aws-sam-cli and ministack get virtualenvs of their own in .bench/.
rehearse: $(STAMP)
	$(BIN)/python -m rehearse

test-rehearsal: $(STAMP)
	$(BIN)/pytest -m rehearsal tests/rehearsal

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
