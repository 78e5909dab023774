# The verbs people type. `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PKG := files/python
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: rules setup run demo test lint docs-gen unit molecule lab lab-status lab-deploy lab-test drill lab-down bench bench-sync bench-producer bench-gateway-scale clean

setup:
	@scripts/setup.sh

# The whole fleet in local containers, deployed by site.yml, ending with the fleet status table.
run: lab

lab: setup
	$(BIN)/python scripts/lab.py up

# make lab-status WIDE=1: every column in full
lab-status: setup
	$(BIN)/python scripts/lab.py status $(if $(WIDE),--wide)

# Redeploy part of the lab, e.g. make lab-deploy HOSTS=host120
lab-deploy: setup
	$(BIN)/python scripts/lab.py deploy $(if $(HOSTS),--hosts $(HOSTS))

lab-down: setup
	$(BIN)/python scripts/lab.py down

lab-test: setup
	$(BIN)/python scripts/lab.py test

# The fault drills alone, in a reduced lab that is up (lab.py up --hosts host73,host120); lab-test runs them too.
drill: setup
	$(BIN)/python scripts/lab.py drill $(if $(ONLY),--only $(ONLY))

# Without containers: influxd + simulator + producer + sync + freqtrade's loader, in about a minute.
demo: setup
	$(BIN)/python scripts/demo.py

# The last step builds the documentation site (mkdocs.yml, docs/) into site/: --strict fails on a broken
# link or anchor. Never add --quiet: it hides the warnings strict mode counts, and the build passes.
lint: setup
	$(BIN)/ruff check $(PKG) bench scripts playbooks/filter_plugins monitoring
	$(BIN)/mypy --config-file $(PKG)/pyproject.toml $(PKG)/freqfeed
	$(BIN)/python scripts/gen_docs.py --check
	$(BIN)/ansible-lint
	$(BIN)/ansible-playbook -i inventory/production site.yml --syntax-check
	$(BIN)/ansible-playbook -i inventory/production playbooks/status.yml --syntax-check
	$(BIN)/ansible-playbook -i inventory/production playbooks/grafana.yml --syntax-check
	$(MAKE) --no-print-directory rules
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The alert rules: valid, and every rule's unit test (promtool from Debian's prometheus package, scripts/setup.sh).
rules:
	promtool check rules monitoring/prometheus/freqfeed-rules.yml
	promtool test rules monitoring/prometheus/freqfeed-rules.test.yml
	promtool check config --syntax-only monitoring/prometheus/prometheus.example.yml
	@# the lab's Prometheus config (generated from inventory/lab) and its copy of the rules, as services.py writes them
	tmp=$$(mktemp -d) && $(BIN)/python scripts/lab_prometheus.py --dir $$tmp >/dev/null \
	  && promtool check config $$tmp/prometheus.yml; status=$$?; rm -rf $$tmp; exit $$status

# Rewrite the generated tables (docs/configuration.md, roles/*/README.md) from config.py and argument_specs.
docs-gen: setup
	$(BIN)/python scripts/gen_docs.py

# Two workers (pytest-xdist; UNIT_WORKERS=0 runs them in one process): most integration tests wait on influxd,
# simulators and freqtrade, so two interleave on the two cores; --dist loadfile keeps each module (and its
# module-scoped servers) on one worker; every test takes free ports and its own temp dirs.
# --durations: the 25 slowest tests (setup and call) at the end, so a slow new end-to-end test shows.
UNIT_WORKERS ?= 2
unit: setup
	cd $(PKG) && FREQFEED_FREQTRADE_PYTHON=$(CURDIR)/.cache/freqtrade-venv/bin/python ../../$(BIN)/pytest -p no:cacheprovider \
	  $(if $(filter 0,$(UNIT_WORKERS)),,-n $(UNIT_WORKERS) --dist loadfile) --durations=25

# The pure tests (tests/quick: no servers, no subprocesses, no sleeps) in seconds, the loop while editing;
# `make unit` runs them too, with everything else.
.PHONY: quick
quick: setup
	cd $(PKG) && $(abspath $(BIN))/pytest -p no:cacheprovider -q tests/quick

molecule: setup
	scripts/molecule-test.sh

test: lint unit molecule lab-test

bench: bench-sync bench-producer

bench-sync: setup
	$(BIN)/python bench/sync_bench.py --json bench/results/sync.json

bench-producer: setup
	$(BIN)/python bench/producer_bench.py --parts a,b --json bench/results/producer-backfill.json
	$(BIN)/python bench/producer_bench.py --parts c,d --json bench/results/producer-live.json

# the gateway at fleet scale (issue 15): 300 pairs x 5 timeframes, default depth and 35 days; about 20 minutes
bench-gateway-scale: setup
	$(BIN)/python bench/gateway_scale_bench.py --json bench/results/gateway-scale.json

clean:
	rm -rf $(VENV) .cache site
