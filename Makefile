# The two commands a contributor needs: `make dev` runs the whole system, `make test` the tests.
# `make help` lists the rest.

SHELL := /bin/bash

# Tests use running servers when these are set (each test gets its own database and vhost);
# the defaults are the local ones. Unset them (make test DATABASE_URL= AMQP_URL=) to have the tests
# start PostgreSQL and RabbitMQ with testcontainers instead.
DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
export DATABASE_URL AMQP_URL
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help dev test token bench migrate compose-config

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{ printf "  make %-15s %s\n", $$1, $$2 }'

dev: ## the whole system on this machine: services, gateway on :8786 (GATEWAY_PORT=...; local PostgreSQL, RabbitMQ, nginx)
	bash infra/dev/run.sh

# Two workers (pytest-xdist, a test file per worker at a time), then alone the tests that stop the
# shared RabbitMQ server. PYTEST_ARGS adds arguments to both runs (PYTEST_ARGS="-k wallet").
test: ## every test (against DATABASE_URL / AMQP_URL)
	uv run pytest -n $(TEST_WORKERS) --dist loadfile -m "not stops_broker" $(PYTEST_ARGS)
	uv run pytest -m stops_broker $(PYTEST_ARGS)

token: ## a dev JWT for a lenser: make -s token SUB=<uuid>
	@test -n "$(SUB)" || { echo "usage: make -s token SUB=<lenser uuid>" >&2; exit 2; }
	@uv run python -m lf_testing.tokens "$(SUB)"

bench: ## the benchmarks, report in tests/bench/out/benchmarks.md (UPDATE_DOCS=1: docs/benchmarks.md, on an idle machine)
	bash tests/bench/run.sh

migrate: ## create the database if needed and apply every service's migrations (as make dev does)
	bash infra/dev/run.sh migrate

compose-config: ## check docker-compose.yml
	docker compose config -q
