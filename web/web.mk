# Web targets, included by the top-level Makefile (which defines BIN and `install`).
#
#   make web        npm ci (when package-lock.json changed) and build web/dist/ (when sources did)
#   make serve      build, then serve web/ at http://127.0.0.1:$(PORT)/ with COOP/COEP headers;
#                   $(MODEL_DIR) is served at /model/
#   make test-web   browser tests (Debian's Chromium, headless) against $(WEB_TEST_MODEL_DIR),
#                   comparing with the SavedModel $(WEB_TEST_SAVED_MODEL); by default a stand-in
#                   model with the same signature, built by $(WEB_TEST_MODEL_TARGET)
#   make web-samples  regenerate web/samples/ (downloads the scikit-image wheel with pip)
#   make web-lint / web-format   check / apply the JS, CSS and HTML formatting (Prettier)

PORT ?= 8000
MODEL_DIR ?= web/model
WEB_STANDIN := build/web/standin
WEB_TEST_MODEL_TARGET ?= web-standin
WEB_TEST_MODEL_DIR ?= $(WEB_STANDIN)/tfjs
WEB_TEST_SAVED_MODEL ?= $(WEB_STANDIN)/saved_model
CHROMIUM ?= $(or $(shell command -v chromium 2>/dev/null),/usr/bin/chromium)

WEB_NPM_STAMP := node_modules/.npm-ci.stamp
WEB_BUILD_STAMP := web/dist/.built
WEB_SOURCES := web/build.mjs $(wildcard web/src/*.js) web/index.html web/style.css \
	web/favicon.svg $(wildcard web/samples/*.jpg)

.PHONY: web serve test-web web-standin web-chromium web-samples web-lint web-format

$(WEB_NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(WEB_BUILD_STAMP): $(WEB_NPM_STAMP) $(WEB_SOURCES)
	node web/build.mjs
	@touch $@

web: $(WEB_BUILD_STAMP)

# The documentation site (with the app at /app/) when `make docs` has built it, else the app.
serve: web
	@if [ -f site/index.html ]; then \
		echo "serving site/ (the stylizer at /app/; make docs rebuilds it)"; \
		node web/serve.mjs --port $(PORT) --root site; \
	else node web/serve.mjs --port $(PORT) --model-dir $(MODEL_DIR); fi

$(WEB_STANDIN)/.built: web/tests/make_standin_model.py convert/contract.py convert/tf_module.py \
		sanet/request.py | install
	$(BIN)/python web/tests/make_standin_model.py $(WEB_STANDIN)
	@touch $@

web-standin: $(WEB_STANDIN)/.built

# Chromium from Debian: Playwright's own browser download cannot work without the internet.
web-chromium:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "Chromium is missing: run 'sudo apt-get install chromium' or set CHROMIUM=" >&2; \
		exit 1; \
	fi

test-web: web web-chromium $(WEB_TEST_MODEL_TARGET) web-standin | install
	MODEL_DIR="$(WEB_TEST_MODEL_DIR)" SAVED_MODEL_DIR="$(WEB_TEST_SAVED_MODEL)" \
	STANDIN_DIR="$(WEB_STANDIN)/tfjs" \
	PYTHON="$(BIN)/python" CHROMIUM="$(CHROMIUM)" node --test web/tests/*.test.mjs

web-samples: | install
	$(BIN)/python web/samples/make_samples.py

PRETTIER := node_modules/.bin/prettier --ignore-path web/.prettierignore
WEB_FORMATTED := "web/**/*.{js,mjs,css,html,json}"

web-lint: $(WEB_NPM_STAMP)
	$(PRETTIER) --check $(WEB_FORMATTED)

web-format: $(WEB_NPM_STAMP)
	$(PRETTIER) --write $(WEB_FORMATTED)
