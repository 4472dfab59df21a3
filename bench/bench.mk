# bench/bench.mk — benchmark and test-dependency targets, included from the
# top-level Makefile (`include bench/bench.mk`). Owned with bench/ and
# appliance/internal/browsertest/.

# The preau binary the benchmark runs; the top-level Makefile builds bin/preau.
BENCH_PREAU ?= bin/preau
# axe-core for the browser tests, pinned in package-lock.json.
BROWSERTEST_AXE := appliance/internal/browsertest/testdata/axe

.PHONY: bench bench-nginx test-deps

# make bench [BENCH_DURATION=10s] [BENCH_CONNECTIONS=100]: preau vs nginx
# (see bench/README.md). Command-line variables reach the script's environment.
bench: $(BENCH_PREAU)
	BENCH_PREAU=$(BENCH_PREAU) bash bench/http.sh

# The nginx half alone: checks the harness without a preau binary.
bench-nginx:
	BENCH_ONLY=nginx bash bench/http.sh

# npm ci only when node_modules is missing or the lock (or package.json)
# changed: npm ci writes node_modules/.package-lock.json, touched after it.
test-deps: $(BROWSERTEST_AXE)/node_modules/.package-lock.json

$(BROWSERTEST_AXE)/node_modules/.package-lock.json: $(BROWSERTEST_AXE)/package-lock.json $(BROWSERTEST_AXE)/package.json
	npm ci --prefix $(BROWSERTEST_AXE) --no-audit --no-fund
	touch $@

# make bench-cache [BENCH_DURATION=10s] [BENCH_CONNECTIONS=30]: preau's HTTP
# cache (preau mirror) vs nginx proxy_cache, hits only (see bench/README.md).
.PHONY: bench-cache
bench-cache: $(BENCH_PREAU)
	BENCH_PREAU=$(BENCH_PREAU) bash bench/cache.sh
