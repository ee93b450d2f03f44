# mapflow: the two commands a new machine needs are `make up` and `make test`.
SHELL := /bin/bash
# The timeout bounds each test and each whole file (the chaos and cluster files take minutes); tests keep their own deadlines.
NODE_TEST := node --import tsx --test --test-concurrency=1 --test-timeout=600000
UNIT := $(wildcard test/*.unit.test.ts)
INTEGRATION := $(wildcard test/*.int.test.ts) $(wildcard test/*.e2e.test.ts) $(wildcard test/cluster/*.int.test.ts)

.PHONY: up test test-unit test-cluster chaos bench deps nats-server chromium screenshots typecheck docs clean

# Dependencies from the lockfile, reinstalled only when it changes.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed

# A nats-server >= 2.10 (PATH, or Debian trixie's package fetched into .tools/).
nats-server:
	@bash scripts/nats-server.sh >/dev/null

# Chromium for the browser tests (PATH, or Debian's package when root with apt); without one they skip, saying why.
chromium:
	@bash scripts/chromium.sh >/dev/null

# Install, start the embedded stack with the example DAGs, run the seed DAG, serve the web UI at http://127.0.0.1:8080 (Ctrl-C stops).
up: deps nats-server
	node bin/mapflow.mjs standalone --dags examples --data .mapflow --run sample_repeated_mapping

typecheck: deps
	npx tsc --noEmit -p . && npx tsc --noEmit -p services/ui/client

test-unit: deps
	$(NODE_TEST) $(UNIT)

# Install and run the whole suite: typecheck, unit tests, then tests against real nats-server processes.
test: deps nats-server chromium typecheck
	$(NODE_TEST) $(UNIT) $(INTEGRATION)

# Only the real 3-node cluster tests (also part of `make test`): node and stream-leader failover, quorum loss.
test-cluster: deps nats-server
	$(NODE_TEST) $(wildcard test/cluster/*.test.ts)

# Five minutes of random kills (workers, coordinator, projector, one cluster node at a time) under a mixed
# workload on a 3-node cluster; prints one summary line, fails on any loss or duplicate.
# (Short forms run in `make test`: test/chaos.int.test.ts.)
CHAOS_SECONDS ?= 300
chaos: deps nats-server
	node --import tsx scripts/chaos.ts --seconds $(CHAOS_SECONDS) --fanout 5000 --cluster

# Figures measured in one run (medians of rounds), printed and written to bench/results.json; never a test.
# BENCH_ARGS: e.g. --huge (adds 1,000,000 instances), --quick (the short form CI runs), --profile <dir>.
BENCH_ARGS ?=
bench: deps nats-server
	node --import tsx scripts/bench.ts $(BENCH_ARGS)

# The README's screenshots of the web UI, taken by the browser tests against a real stack.
screenshots: deps nats-server chromium
	MAPFLOW_SCREENSHOTS=docs/screenshots $(NODE_TEST) test/ui.browser.e2e.test.ts

# docs/cli.md from the commands' own help (a test fails when it is out of date).
docs: deps
	node --import tsx scripts/docs.ts

clean:
	rm -rf .mapflow node_modules .tools
