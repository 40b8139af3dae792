# Switchboard: the same targets on a laptop as in CI. `make help` lists them.
.DEFAULT_GOAL := help
VENV := .venv/bin

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## install Debian packages and the .venv (root)
	bash scripts/install.sh

test: ## everything CI runs: lint, types, unit and lab tests (the README's test command)
	bash scripts/test.sh

unit: ## unit tests only (no root, no lab)
	$(VENV)/pytest tests/unit -q

lab-test: ## lab integration tests only (root)
	SWITCHBOARD_REQUIRE_LAB=1 $(VENV)/pytest tests/integration -q

lint: ## ruff
	$(VENV)/ruff check .

typecheck: ## mypy --strict
	$(VENV)/mypy

bench: ## benchmarks (root): lab deploy and destroy times
	$(VENV)/python bench/lab_deploy.py

deploy: ## deploy the core lab and print its table
	$(VENV)/switchboard lab deploy lab/topologies/core.clab.yml

destroy: ## destroy the lab that runs
	$(VENV)/switchboard lab destroy

.PHONY: help install test unit lab-test lint typecheck bench deploy destroy
