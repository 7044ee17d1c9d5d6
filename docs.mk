# Documentation targets, included by the top-level Makefile (which defines BIN, `install` and,
# through web/web.mk, `web` and PORT).
#
#   make docs          build the documentation and the stylizer into site/ (strict: any MkDocs
#                      warning fails), the app at site/app/ with the model if `make convert`
#                      made one; pages generated from build/parity.json and bench/results.json
#   make docs-serve    build, then serve site/ at http://127.0.0.1:$(PORT)/ with the COOP/COEP
#                      headers that WASM threads need
#   make docs-pictures redraw docs/images/architecture.svg and the example outputs (demo weights),
#                      and keep small copies of the browser tests' screenshots if they exist
#   make docs-check    the documentation tests alone (commands and flags shown exist; strict build)

SITE ?= site
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

.PHONY: docs docs-serve docs-pictures docs-check

docs: install web
	$(MKDOCS) build --strict --site-dir $(SITE)

docs-serve: docs
	node web/serve.mjs --port $(PORT) --root $(SITE)

docs-pictures: install
	$(BIN)/python docs/_tools/make_diagram.py docs/images/architecture.svg
	$(BIN)/python docs/_tools/make_examples.py docs/images/examples
	$(BIN)/python docs/_tools/make_control_examples.py docs/images/controls
	@if [ -f build/screenshots/desktop.png ]; then \
		$(BIN)/python docs/_tools/keep_screenshots.py build/screenshots docs/images/screenshots; \
	else echo "no build/screenshots/: run 'make test-web' to refresh the screenshots"; fi

docs-check: install web
	$(BIN)/python -m pytest tests/test_docs.py
