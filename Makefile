# A thin wrapper over meson; both main targets do their own set-up.
BUILD ?= build
MESON_SETUP = meson setup $(BUILD) --prefix=/usr -Dwerror=true
NODES ?= 3
# make demo RUNTIME=containerd: the nodes run containerd (CNI) instead of Docker.
RUNTIME ?= docker

.PHONY: all deps build check test demo demo-down bench clean

all: build

deps:
	tools/install-deps.sh

$(BUILD)/build.ninja:
	$(MESON_SETUP)

build: deps $(BUILD)/build.ninja
	meson compile -C $(BUILD)

# Every test suite: unit, cli, netsetup, etcd, the systemd-nspawn bed and e2e.
check: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 1; \
	rc=$$?; tools/test-summary.py $(BUILD)/meson-logs/testlog.json; exit $$rc

test: check

demo: build
	RUNTIME=$(RUNTIME) tests/bed/demo.sh up $(NODES)

demo-down:
	tests/bed/demo.sh down

# Every benchmark (issue 8), printing the tables of docs/performance.md.
bench: build
	tests/bench/run-all.sh $(BUILD)

clean:
	rm -rf $(BUILD)
