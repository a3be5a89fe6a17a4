# reprise — build, test, demo.
# `make demo` and `make test` are the whole set-up on a fresh Debian machine with Go.

GO      ?= go
BIN     := bin
PKGS    := ./...
# Keep `make test` under ~10 minutes on 2 cores: soaks, long fuzzing and
# benchmarks have their own targets.
TESTFLAGS ?= -race -count=1 -timeout 15m

.PHONY: all build test test-short fuzz bench demo demo-resume demo-cluster report-screenshot proto proto-python clean tidy vet

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -buildvcs=auto -o $(BIN)/reprise ./cmd/reprise   # stamps the commit: reprise --version
	@if [ -d examples/vendor-plugin ]; then $(GO) build -o $(BIN)/reprise-plugin-pacs ./examples/vendor-plugin; fi

test: build
	$(GO) build -o $(BIN)/etcd ./internal/etcdmain   # the tests' etcd members run it
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Fuzz each parser target for FUZZTIME (a short smoke runs inside `make test`
# through the seed corpus).
FUZZTIME ?= 60s
FUZZ_TARGETS := ./graphs:FuzzParse ./engine/state:FuzzOpen ./engine/state:FuzzNodeCodec \
	./engine/state:FuzzEntryJSON ./plugins/sdk:FuzzDecode ./examples/vendor-plugin:FuzzReadManifest \
	./engine/host:FuzzSessionReplies ./engine/host:FuzzPluginOutput ./engine/host:FuzzExecOutput \
	./engine/state:FuzzParseEntry ./engine/state/etcdstate:FuzzNodeBlock \
	./engine/state/etcdstate:FuzzSnapshot ./engine/state/etcdstate:FuzzJournalBlock \
	./internal/cluster:FuzzOfferValue ./internal/zblob:FuzzUnpack ./graphs:FuzzRendition ./graphs:FuzzRenditionFast
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; echo "== $$name ($$pkg, $(FUZZTIME))"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME); \
	done

# Figures beside their peers (GNU make, ninja: apt-get install ninja-build),
# the restore-point scan of a 2 GiB tree beside sha256sum, then every
# package's Go benchmarks.
bench: build
	$(GO) run ./bench -n 10000 -repeat 3 -big 100000 -reprise $(BIN)/reprise
	$(GO) run ./bench/scanbench -size 2147483648 -repeat 3
	$(GO) test -run '^$$' -bench . -benchmem -count 5 $(PKGS)

demo: build
	@if [ -x examples/hospital/demo.sh ]; then examples/hospital/demo.sh; else echo "demo not built yet"; exit 1; fi

demo-resume: build
	@if [ -x examples/hospital/demo-resume.sh ]; then examples/hospital/demo-resume.sh; else echo "demo-resume not built yet"; exit 1; fi

# The reference hospital rebuilt by a cluster on this machine: 3 etcd members
# (bin/etcd, the etcd server module go.mod pins), two coordinators (leader and
# standby), three agents; an agent, the leader and one member are killed on the way.
demo-cluster: build
	$(GO) build -o $(BIN)/etcd ./internal/etcdmain
	examples/hospital/demo-cluster.sh

# Regenerate the plugin contract's Go code from plugins/proto (the output is
# committed: CI never runs protoc). Needs Debian's protobuf-compiler and the
# pinned generators:
#   apt-get install -y protobuf-compiler
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
PROTO_GO_VERSION   := v1.36.12
PROTO_GRPC_VERSION := v1.5.1
proto:
	@PATH="$$($(GO) env GOPATH)/bin:$$PATH"; \
	  protoc-gen-go --version | grep -q '$(PROTO_GO_VERSION)' || { echo "want protoc-gen-go $(PROTO_GO_VERSION)"; exit 1; }; \
	  protoc-gen-go-grpc --version | grep -q '$(subst v,,$(PROTO_GRPC_VERSION))' || { echo "want protoc-gen-go-grpc $(PROTO_GRPC_VERSION)"; exit 1; }; \
	  protoc -I plugins/proto \
	    --go_out=plugins/proto --go_opt=paths=source_relative \
	    --go-grpc_out=plugins/proto --go-grpc_opt=paths=source_relative \
	    plugins/proto/reprise/plugin/v1/plugin.proto

# Regenerate the contract's Python code (plugins/python/gen, committed too).
# Needs Debian's protobuf-compiler and protobuf-compiler-grpc (the protoc of
# python3-protobuf's version, 3.21).
proto-python:
	protoc -I plugins/proto --python_out=plugins/python/gen \
	  --grpc_python_out=plugins/python/gen --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
	  plugins/proto/reprise/plugin/v1/plugin.proto

# A PNG of the demo's HTML report as headless Chromium draws it (and the HTML beside it).
REPORT_STATE ?= examples/hospital/work/reprise.db
report-screenshot: demo
	$(BIN)/reprise report --state $(REPORT_STATE) -o $(BIN)/demo-report.html
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
		--user-data-dir="$$(mktemp -d)" --window-size=1400,2000 \
		--screenshot=$(CURDIR)/$(BIN)/demo-report.png file://$(CURDIR)/$(BIN)/demo-report.html
	@echo "wrote $(BIN)/demo-report.html and $(BIN)/demo-report.png"

vet:
	$(GO) vet $(PKGS)

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN)
