# OrionOS developer entry points. Run as root on Debian 12.
#   make lab       bring up the local lab (boot servers as podman containers)
#   make lab-down  remove it
#   make image     build the minimal image from source and publish it locally
#   make test      everything CI runs
SHELL := /bin/bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_PYTHON_INTERPRETER := $(CURDIR)/$(BIN)/python
SANITY_DIR := build/sanity/ansible_collections/orionos/diskless
SCENARIOS ?= boot_server ha

.PHONY: help host venv images nfsd-guest image sources lab lab-down test build-test lint yamllint ansible-lint collection-tree sanity units integration molecule collection bench-ha bench-policy bench-boot bench-build bench-rerun bench-service bench-rollback clean

help:
	@sed -n '2,6p' Makefile

host:
	bash tests/rig/host-setup.sh

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed

images: host
	bash tests/rig/build-images.sh

# LAB_ARGS: more ansible-playbook arguments (tests/rig/lab-check.sh points the
# build at the build tests' area with them).
LAB_ARGS ?=
lab: host venv images
	$(BIN)/ansible-playbook -i inventories/lab/hosts.yml playbooks/lab.yml $(LAB_ARGS)

lab-down: venv
	$(BIN)/ansible-playbook -i inventories/lab/hosts.yml playbooks/lab_down.yml

# The build from source on this machine (lab inventory: the build host is
# localhost), publishing into /srv/orion here.
image: host venv
	$(BIN)/ansible-playbook -i inventories/lab/hosts.yml playbooks/build.yml -e orion_build_profile=minimal

# An offline source mirror filled from Debian's source packages, as a site
# without internet would keep one (used by build-test).
SOURCES ?= /var/cache/orion/debian-sources
sources:
	bash tests/rig/debian-sources.sh $(SOURCES)

# The disk of the ha scenario's kernel NFS guest (its test builds it too when it is missing).
NFSD_GUEST ?= $(or $(ORION_NFSD_GUEST),/var/tmp/orion-nfsd-guest)
nfsd-guest: host images
	bash tests/rig/build-nfsd-guest.sh $(NFSD_GUEST)

# Two lanes (tests/rig/run-tests.sh): the build from source in the background
# at a lower priority, everything else in the foreground.
test: host venv sources
	bash tests/rig/run-tests.sh "$(MAKE)"
	@echo "make test: all checks passed"

lint: yamllint ansible-lint sanity

yamllint: venv
	$(BIN)/yamllint --strict .

ansible-lint: venv
	$(BIN)/ansible-lint --offline

# ansible-test works on a copy of the collection in an ansible_collections/ tree.
collection-tree: venv
	pipver=$$($(BIN)/python -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; \
	  from types import SimpleNamespace as N; print(g(N(version="3.11"))["pip"])'); \
	  cached=~/.ansible/test/cache/get_pip_$${pipver//./_}.py; \
	  if [ ! -e "$$cached" ] || grep -q 'Offline stand-in' "$$cached"; then \
	    install -D -m 0644 tests/sanity/pip_bootstrap.py "$$cached"; fi
	rm -rf build/sanity && mkdir -p $(SANITY_DIR)
	git ls-files -z --cached --others --exclude-standard | grep -zv '^collections/' \
	  | xargs -0 cp -P --parents -t $(SANITY_DIR)
	cd $(SANITY_DIR) && git init -q && git add -A

sanity: collection-tree
	cd $(SANITY_DIR) && $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --color no --requirements

# tests/unit with ansible-test units (pytest, hypothesis), as the collection is tested once installed.
units: collection-tree
	cd $(SANITY_DIR) && $(CURDIR)/$(BIN)/ansible-test units --python 3.11 --color no --requirements

integration: host venv
	$(BIN)/python -m pytest -q tests/integration

collection: host venv images
	bash tests/collection/check-install.sh

# Each scenario's output also goes to build/molecule-<scenario>.log; when one
# fails, what failed is printed again at the very end.
# The build from source: bad input, binutils pass 1 of the lfs profile, and the
# minimal profile end to end (killed and resumed, booted in QEMU, reproducible).
build-test: host venv sources
	ORION_TEST_SOURCES=$(SOURCES) $(BIN)/python -m pytest -v -p no:cacheprovider --durations=15 tests/build

molecule: host venv images
	mkdir -p build; failed=""; \
	  for s in $(SCENARIOS); do \
	    $(BIN)/molecule test -s $$s 2>&1 | tee build/molecule-$$s.log || failed="$$failed $$s"; \
	  done; \
	  for s in $$failed; do bash tests/rig/failures.sh build/molecule-$$s.log; done; \
	  test -z "$$failed"

# VRRP takeover (10 kills) and NFS throughput against the ha scenario.
bench-ha: host venv images
	$(BIN)/python benchmarks/ha_failover.py

# boot_policy rendering 10,000 nodes through ansible-playbook, against a template loop.
bench-policy: venv
	$(BIN)/python benchmarks/policy_render.py

# Diskless node boot (network against -kernel/-initrd), HTTP against TFTP, failover stalls (on the lab).
bench-boot: host venv images
	$(BIN)/python benchmarks/node_boot.py --up

# 1 SBU (binutils pass 1) and the minimal profile, cold, from offline sources.
bench-build: host venv sources
	$(BIN)/python benchmarks/build.py --sources $(SOURCES)

# The boot service: script latency against nginx's static file (wrk), etcd writes per boot (on the lab).
bench-service: host venv images
	$(BIN)/python benchmarks/boot_service.py

# Automatic rollback: from a reboot into each kind of broken version to the good boot, 5 rounds (on the lab).
bench-rollback: host venv images
	$(BIN)/python benchmarks/rollback.py

# servers.yml and make lab with nothing to change, on the lab (brought up first if needed).
bench-rerun: host venv images
	$(BIN)/python benchmarks/rerun.py --lab-args "$(LAB_ARGS)"

clean:
	rm -rf build orionos-diskless-*.tar.gz
