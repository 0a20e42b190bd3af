# Everyday commands. Each target is a thin call of a command the README
# shows, so `make X` and the README never disagree; run `make help` for the
# list. Everything runs from the repository root through go.work.

GO          ?= go
# Fuzzing: how long each fuzz target runs.
FUZZTIME    ?= 60s
# Service benchmarks: -benchtime of the throughput benchmarks.
BENCHTIME   ?= 5s
# Docker compose file for compose-up (the load-balanced one:
# COMPOSE_FILE=docker-compose-load-balanced.yml).
COMPOSE_FILE ?= docker-compose.yml
# staticcheck, pinned; `go run` fetches and caches this exact version.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help run test test-race lint vet staticcheck bench bench-platform fuzz e2e envs keys compose-up ci

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

run: ## the whole platform locally: embedded NATS, store, Redis, 2+2 replicas, gateway on :8000
	$(GO) run ./.tools/devstack

test: ## every test of every module
	$(GO) test work

test-race: ## every test with the race detector (what CI runs)
	$(GO) test -race work

lint: vet staticcheck ## go vet and staticcheck on every module

vet:
	$(GO) vet work

# `work` is every package of every module in go.work (a ./.tools/... pattern
# would match nothing: the go tool skips folders whose names start with ".").
staticcheck:
	$(STATICCHECK) work

bench: ## the service benchmarks of the README's Benchmarks section
	$(GO) test ./auth_service/tests/ -run '^$$' -bench . -benchtime $(BENCHTIME)
	$(GO) test ./blog_service/tests/ -run '^$$' -bench 'HTTP|Engine' -benchtime $(BENCHTIME)
	$(GO) test ./blog_service/tests/ -run '^$$' -bench Latency -benchtime 8x

bench-platform: ## the whole platform under load (go run ./.tools/bench)
	$(GO) run ./.tools/bench

fuzz: ## each fuzz target for FUZZTIME (60s)
	$(GO) test -run '^$$' -fuzz '^FuzzSignUpBody$$' -fuzztime $(FUZZTIME) ./auth_service/tests/
	$(GO) test -run '^$$' -fuzz '^FuzzSignInBody$$' -fuzztime $(FUZZTIME) ./auth_service/tests/
	$(GO) test -run '^$$' -fuzz '^FuzzAuthorBodies$$' -fuzztime $(FUZZTIME) ./blog_service/tests/
	$(GO) test -run '^$$' -fuzz '^FuzzServeEnvelope$$' -fuzztime $(FUZZTIME) ./chassis/natsx/

e2e: ## end-to-end tests through the local gateway (real service binaries)
	$(GO) test -count=1 ./.tools/e2e/

envs: ## .env files from the .env.example files (never overwrites)
	$(GO) run .tools/copy/envs.go

keys: ## auth_service/keys/{private,public}.pem (refuses to overwrite existing keys)
	$(GO) run .tools/rsa/keygen.go

# compose-up makes the key pair only when there is none.
auth_service/keys/private.pem:
	$(GO) run .tools/rsa/keygen.go

compose-up: envs auth_service/keys/private.pem ## the Docker stack (real Kong, MongoDB, Redis, NATS)
	docker compose -f $(COMPOSE_FILE) up -d --build

ci: ## what CI runs
	bash .ci/run
