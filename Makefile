# virt-setup — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/virt-setup
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 15s
ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/virt-setup
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/virt-setup

.PHONY: run
run: build ## Build and run virt-setup on this host: the wizard (ARGS="doctor" etc. for a command)
	@# doctor exits 3 (failures found) or 4 (warnings): findings, not a broken build.
	@./$(BIN) $(ARGS); code=$$?; case $$code in 0|3|4) ;; *) exit $$code;; esac

.PHONY: demo
demo: build ## Run the wizard's demo against a recorded host (HOST=ubuntu-24.04 by default)
	./$(BIN) --demo --host-profile $(or $(HOST),ubuntu-24.04)

.PHONY: screens
screens: ## Capture every wizard screen from the real program in tmux into docs/screens
	VIRT_SETUP_SCREENSHOTS=$(CURDIR)/docs/screens $(GO) test -count=1 -run 'TestWizard(Demo|Plain)InTmux' ./cmd/virt-setup

.PHONY: golden
golden: ## Rewrite the wizard's View() golden files after a deliberate change
	$(GO) test -count=1 ./tui -update

.PHONY: test-setup
test-setup: ## Install the packages, the pinned rootless stack, the test user and the Debian 12 guest image (root)
	scripts/setup-test-host.sh
	scripts/install-components.sh
	scripts/vm/build-image.sh

.PHONY: vm-image
vm-image: ## Build (or find cached) the Debian 12 guest image for the systemd path (root)
	scripts/vm/build-image.sh

.PHONY: vm-test
vm-test: test-setup ## Boot Debian 12 guests under qemu and test the systemd path in them (logs: out/vm-test/)
	$(GO) test -count=1 -timeout 30m -v -run 'TestDebianGuest' ./internal/vmtest

.PHONY: test
test: test-setup lint ## Run the whole test suite (lint, unit, fuzz seeds, live tests as an unprivileged user)
	@# -p 1: end-to-end tests in several packages run the real rootless stack as the same test user and
	@# change host device modes as udev would; one package at a time keeps them from racing.
	@# -timeout 30m: internal/vmtest boots two qemu guests, each allowed 8 minutes before it is killed.
	$(GO) test -race -count=1 -p 1 -timeout 30m ./...

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags vmguest ./internal/vmtest/...

.PHONY: bench
bench: build ## Go benchmarks, and the timing of 'probe --json' on this host as the test user
	$(GO) test -run '^$$' -bench . -benchmem ./...
	scripts/time-probe.sh ./$(BIN)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 15s)
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

.PHONY: profiles
profiles: ## Regenerate the shipped host profiles in assets/hosts
	$(GO) generate ./assets

.PHONY: clean
clean: ## Remove build output and the guests' logs (the guest image cache stays: scripts/vm/build-image.sh)
	rm -rf bin out
