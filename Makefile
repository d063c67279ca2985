# authbench — build, demo, tests, benchmarks and fuzzing.
#
# Every target first installs what is missing on a Debian machine (with
# apt-get when run as root or with sudo available) and otherwise prints the
# exact command to run.

GO        ?= go
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
TESTFLAGS ?=
BIN       := bin/authbench

# Debian packages: to build (cgo drivers), and what the tests talk to.
BUILD_DEBS := libpcsclite-dev libusb-1.0-0-dev pkg-config
# umockdev, gir1.2-umockdev-1.0 and python3-gi emulate USB keys for libusb and
# hidraw programs (sim/umockdev); fido2-tools is libfido2, an independent host.
USB_DEBS   := umockdev gir1.2-umockdev-1.0 python3-gi fido2-tools
TEST_DEBS  := $(BUILD_DEBS) pcscd vsmartcard-vpcd pcsc-tools iproute2 python3-fido2 python3-pyscard espeak-ng sox postgresql zsh fish mandoc libxml2-utils chromium fonts-dejavu-core $(USB_DEBS)

.PHONY: all build demo test bench fuzz vet deps test-deps clean

all: build

deps:
	@.ci/deps $(BUILD_DEBS)

# The browser tests also inject axe-core (npm) into every page; .ci/axe
# installs it into the user's cache directory, outside the repository.
test-deps:
	@.ci/deps $(TEST_DEBS)
	@.ci/axe >/dev/null

build: deps
	$(GO) build -o $(BIN) ./cmd/authbench

# The main job: the end-to-end story on simulated devices; then, in a
# terminal, the pages (self-service and support) with a ready-made person,
# until Ctrl-C. Without a terminal (a script, CI) it prints how to start
# them instead of waiting; DEMO_PAGES=1 serves them anyway, DEMO_PAGES=0
# never.
DEMO_PAGES ?= auto
demo: build
	./$(BIN) demo
	@if [ "$(DEMO_PAGES)" = 1 ] || { [ "$(DEMO_PAGES)" = auto ] && [ -t 0 ] && [ -t 1 ]; }; then \
		./$(BIN) serve --demo; \
	else \
		echo; echo "To click through the story in a browser: ./$(BIN) serve --demo (a ready-made person; stop with Ctrl-C)"; \
	fi

test: test-deps
	$(GO) vet ./...
	@# PostgreSQL tests use a local server when one can be started (as root).
	$(eval export AUTHBENCH_POSTGRES_URL := $(shell .ci/postgres))
	CGO_ENABLED=0 $(GO) build ./device/... ./sim/... ./server/... ./cmd/...
	$(eval export AUTHBENCH_AXE := $(shell .ci/axe))
	$(GO) test -timeout 12m $(TESTFLAGS) ./...

bench: test-deps
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./...

# Runs every fuzz target for FUZZTIME each (go test runs the seeds already).
fuzz: deps
	@.ci/fuzz $(FUZZTIME)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

clean:
	rm -rf bin
