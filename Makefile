# moodcam front door. `make demo` and `make test` work on a fresh machine: each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The machine's role: a Pi runs the device only; anything else also trains and converts.
ARCH := $(shell uname -m)
ROLE ?= $(if $(filter aarch64 armv7l armv6l,$(ARCH)),device,desktop)
EXTRAS_device := litert,report,web
EXTRAS_desktop := desktop,report,web,test
STAMP := $(VENV)/.installed-$(ROLE)
export MOODCAM_DATA ?= $(abspath ../shared/data)
export TF_CPP_MIN_LOG_LEVEL ?= 2
RUN ?= runs/edge80
ARCH_NAME ?= edge
EPOCHS ?= 80
# What `make convert` ships unless MODEL= says: the first of the wide teacher's student's best
# epoch, the student's weight average (make swa writes it only when it beat the best epoch on
# PublicTest), the student's best epoch (second schedule, then first), phase 2's best, phase 1's
# (the runs of training/recipe.mk).
MODEL ?=
# What `make eval` scores (empty: the shipped model and the float model its card was converted from).
EVAL_MODELS ?=

.PHONY: setup test fuzz demo bench-scenes train convert eval compare bench lint soak install uninstall security-report figures test-deps clean bench-web web-screenshot vm-test

setup: $(STAMP)

# One stamp per role installed into the venv; the desktop role includes everything the device's has.
$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS_$*)]"
	touch $@

# Services the tests start themselves (a real Mosquitto), and the browser the dashboard's tests
# drive (Chromium and its chromedriver); installed from Debian when missing.
test-deps:
	@missing=""; for b in mosquitto mpd shellcheck systemd-analyze chromium chromedriver; do command -v $$b >/dev/null || [ -x /usr/sbin/$$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$(echo $$missing | sed 's/systemd-analyze/systemd/; s/chromedriver/chromium-driver/') >/dev/null; \
	  else echo "make test needs Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; fi; fi

# The device's other TFLite runtime (32-bit Pi OS: tflite-runtime, numpy<2) in a venv of its own,
# so the tests run the same model and daemon on it; its wheels stop at Python 3.11.
TFLITE_VENV := .venv-tflite
$(TFLITE_VENV)/.installed: pyproject.toml
	@if $(PYTHON) -c 'import sys; sys.exit(sys.version_info >= (3, 12))'; then \
	  test -x $(TFLITE_VENV)/bin/python || $(PYTHON) -m venv $(TFLITE_VENV); \
	  $(TFLITE_VENV)/bin/python -m pip install -q --upgrade pip && \
	  $(TFLITE_VENV)/bin/python -m pip install -q -e ".[tflite-runtime]" && touch $@; \
	else echo "no tflite-runtime wheel for $$($(PYTHON) -V): tests/test_runtimes.py will say so"; fi

# The test tools (pytest, ruff, ...) on top of the role: the desktop role has them already; on a
# Pi (device role, no TensorFlow) the tests of training/ and convert/ say they need the desktop.
$(VENV)/.test-tools: $(STAMP)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

test: setup test-deps $(VENV)/.test-tools $(TFLITE_VENV)/.installed
	MOODCAM_TFLITE_VENV=$(abspath $(TFLITE_VENV)) $(PY) -m pytest -q

lint: setup $(VENV)/.test-tools
	$(VENV)/bin/ruff check .

# The daemon over the bundled clip with the shipped model, writing a mood log.
DEMO_LOG ?= runs/demo/mood.jsonl
# Needs only the device role (no TensorFlow), so a fresh PC runs it after a light install.
demo: $(if $(wildcard $(VENV)/.installed-desktop),$(VENV)/.installed-desktop,$(VENV)/.installed-device)
	@mkdir -p $(dir $(DEMO_LOG)) && rm -f $(DEMO_LOG)*
	$(VENV)/bin/moodcam run --source demo/clip.mp4 --clock wall --log $(DEMO_LOG) --log-interval 0.5 --summary
	$(PY) -m demo.compare $(DEMO_LOG)
	@echo "next: $(VENV)/bin/moodcam report $(DEMO_LOG)   (wall-clock times, so it has a day to show)"
	$(VENV)/bin/moodcam report $(DEMO_LOG)

train: setup
	$(PY) -m training.train --arch $(ARCH_NAME) --epochs $(EPOCHS) --out $(RUN)

convert: setup
	model="$(MODEL)"; [ -n "$$model" ] || for m in $(KD3_RUN)/best.keras $(KD2_RUN)/swa.keras $(KD2_RUN)/best.keras $(KD_RUN)/best.keras $(FT_RUN)/best.keras $(RUN)/best.keras; do \
	  [ -f $$m ] && { model=$$m; break; }; done; \
	$(PY) -m convert.convert "$${model:?no model: make model runs the whole recipe}" --out models/moodcam.tflite
	$(PY) -m convert.figures

eval: setup
	$(PY) -m training.evaluate $(EVAL_MODELS)

# PublicTest only: RUNS="baseline candidate..." (run folders or model files), paired McNemar test.
compare: setup
	@[ -n "$(RUNS)" ] || { echo 'usage: make compare RUNS="runs/baseline runs/candidate ..."' >&2; exit 2; }
	$(PY) -m training.compare $(RUNS)

bench: setup
	$(VENV)/bin/moodcam bench --peer "$$($(PY) -c 'from training.evaluate import peer_model; print(peer_model())')" --out bench/results.json
	$(PY) bench/report_bench.py --days 365 --out bench/report.json
	$(PY) -m bench.stop_latency --out bench/stop.json
	$(PY) -m convert.figures

# Camera-like scenes from FER2013 faces through moodcam (shipped settings, and the settings before
# the scene work), full-frame Haar and the peer's pipeline (bench/scenes.py; ~15 min on 2 cores).
# Tune with SPLIT=PublicTest (figures to runs/); the report is PrivateTest, once per shipped change.
SPLIT ?= PrivateTest
SCENES_OUT ?= $(if $(filter PrivateTest,$(SPLIT)),bench/scenes.json,runs/scenes/$(SPLIT).json)
bench-scenes: setup
	@mkdir -p $(dir $(SCENES_OUT))
	$(PY) -m bench.scenes --split $(SPLIT) --config shipped= --config before=bench/scenes-before.toml \
	  --out $(SCENES_OUT) $(SCENES_ARGS)
	$(if $(filter PrivateTest,$(SPLIT)),$(PY) -m convert.figures)

# The fuzzing harness (tests/fuzz.py) for minutes: every command on random flags, configs, cards,
# logs, images, names and special files; the counts go to bench/fuzz.json and README. `make test`
# runs a short pass of it.
FUZZ_SECONDS ?= 600
fuzz: setup $(VENV)/.test-tools
	$(PY) -m tests.fuzz --seconds $(FUZZ_SECONDS) --out bench/fuzz.json --readme README.md

# 30 minutes (plus 1 minute warm-up) of the daemon at full speed with every sink on.
soak: setup test-deps
	$(PY) -m bench.soak --minutes $(or $(MINUTES),30) --out bench/soak.json
	$(PY) -m bench.mockpin_memory
	$(PY) -m convert.figures

# The dashboard's figures (~15 min on 2 cores: a year of 1 Hz lines is generated, indexed and
# served): bench/web.json and README's dashboard lines.
bench-web: setup test-deps
	$(PY) -m bench.web --out bench/web.json --readme README.md

# The README's picture of the dashboard, taken by its browser test (Chromium).
web-screenshot: setup test-deps $(VENV)/.test-tools
	@mkdir -p docs
	MOODCAM_SCREENSHOT=docs/dashboard.png $(PY) -m pytest -q tests/test_web_browser.py

# On the Pi (as root): venv in /opt/moodcam, user, config, systemd service. PURGE=1 also removes data.
install:
	systemd/install.sh

uninstall:
	systemd/install.sh --uninstall $(if $(filter 1,$(PURGE)),--purge)

# moodcam.service under a real systemd: a Debian VM (QEMU; KVM when it boots, else TCG) installs
# the committed HEAD with `make install` and runs .ci/vm-scenario (as root; the root image is
# cached in VM_CACHE); results to bench/vm.json and README. SUITE=trixie for Pi OS Trixie's.
SUITE ?= bookworm
VM_CACHE ?= $(abspath ../vmcache)
vm-test:
	MOODCAM_VM_CACHE=$(VM_CACHE) .ci/vm-test $(SUITE)

security-report: setup
	MOODCAM_SECURITY_REPORT=systemd/SECURITY.txt $(PY) -m pytest -q tests/test_systemd_unit.py -k exposure

figures: setup
	$(PY) -m convert.figures

clean:
	rm -rf $(VENV) $(TFLITE_VENV) .cache .pytest_cache .ruff_cache

# The research recipe that made the shipped model (phase 2, teachers, distillation, the wide
# teacher, SWA, stages, the baseline): its variables and targets, and `make model`.
include training/recipe.mk
