# Préau — build, run and test. See README.md.
GO      ?= go
TAGS    := sqlite_fts5
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X preau/appliance.version=$(VERSION)
export CGO_ENABLED := 1

.PHONY: all build run test vet fuzz clean deps image test-image FORCE

# Test tools fetched from package registries (axe-core from npm).
deps: test-deps

all: build

build: bin/preau

bin/preau: FORCE
	$(GO) build -tags $(TAGS) -buildvcs=false -ldflags '$(LDFLAGS)' -o $@ ./cmd/preau

# The box on this machine: demo content, loopback only, state in ./var;
# DNS on 127.0.0.1:8053 (try: dig @127.0.0.1 -p 8053 connectivitycheck.gstatic.com).
run: bin/preau
	./bin/preau run --data ./var --http 127.0.0.1:8080 --dns 127.0.0.1:8053 --demo

vet:
	$(GO) vet -tags $(TAGS) ./...

# The OS image for x86-64 UEFI mini-PCs (as root; about 7 min the first
# time): apt-get install mkosi debootstrap systemd-container erofs-utils
# dosfstools mtools fdisk e2fsprogs. Prints each artefact's size and
# sha256. See docs/image.md.
image: bin/preau
	image/build.sh --out build/image --preau bin/preau

# The QEMU tier (build tag vmtest; qemu-system-x86 and ovmf too, about
# 10 min): the image boots, preau is READY, a broken slot B falls back.
test-image: image
	image/test-vm.sh --image "$$(ls build/image/preau-*-x86_64.img | head -n 1)" --rootfs build/image/work/rootfs

test: test-deps vet
	$(GO) test -tags $(TAGS) -buildvcs=false -count=1 -timeout 30m ./...

# Short coverage-guided runs of every fuzz target (seeds always run in `make test`).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list -tags $(TAGS) ./...); do \
	  for f in $$($(GO) test -tags $(TAGS) -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -tags $(TAGS) -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin var build test-artefacts

include bench/bench.mk
include bench/sync.mk
