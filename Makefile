# reprise — build, test, demo.
# `make demo` and `make test` are the whole set-up on a fresh Debian machine with Go.

GO      ?= go
BIN     := bin
PKGS    := ./...
# Keep `make test` under ~10 minutes on 2 cores: soaks, long fuzzing and
# benchmarks have their own targets.
TESTFLAGS ?= -race -count=1 -timeout 15m

.PHONY: all build test test-short fuzz bench demo demo-resume proto clean tidy vet

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/reprise ./cmd/reprise
	@if [ -d examples/vendor-plugin ]; then $(GO) build -o $(BIN)/reprise-plugin-pacs ./examples/vendor-plugin; fi

test: build
	$(GO) vet $(PKGS)
	$(GO) test $(TESTFLAGS) $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Fuzz each parser target for FUZZTIME (a short smoke runs inside `make test`
# through the seed corpus).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./graphs -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 $(PKGS)

demo: build
	@if [ -x examples/hospital/demo.sh ]; then examples/hospital/demo.sh; else echo "demo not built yet"; exit 1; fi

demo-resume: build
	@if [ -x examples/hospital/demo-resume.sh ]; then examples/hospital/demo-resume.sh; else echo "demo-resume not built yet"; exit 1; fi

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

vet:
	$(GO) vet $(PKGS)

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN)
