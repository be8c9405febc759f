# moodcam front door. `make demo` and `make test` work on a fresh machine: each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The machine's role: a Pi runs the device only; anything else also trains and converts.
ARCH := $(shell uname -m)
ROLE ?= $(if $(filter aarch64 armv7l armv6l,$(ARCH)),device,desktop)
EXTRAS_device := litert,report
EXTRAS_desktop := desktop,report,test
STAMP := $(VENV)/.installed-$(ROLE)
export MOODCAM_DATA ?= $(abspath ../shared/data)
export TF_CPP_MIN_LOG_LEVEL ?= 2
RUN ?= runs/edge80
ARCH_NAME ?= edge
EPOCHS ?= 80
# Phase 2 starts from phase 1's best model with lighter augmentation and a fresh, shorter schedule.
FT_RUN ?= $(RUN)-ft
FT_EPOCHS ?= 36
FT := $(PY) -m training.train --arch $(ARCH_NAME) --init $(RUN)/best.keras --augment light --warmup 1
# Phase 2 and two variants of it (another seed, half the rate) teach the distilled student
# (training/distill.py): phase 2 once more, the teachers' ensemble scoring every augmented batch
# (online) for 80 % of each target; then a second, patient schedule from its best epoch at half
# the rate, with mixup (the teachers score the blends).
TEACHER_RUNS ?= $(FT_RUN) $(FT_RUN)-s2 $(FT_RUN)-lr5e-4
KD_RUN ?= $(RUN)-okd
KD2_RUN ?= $(RUN)-okd2
# Last, a wider network (--arch teacher: 4.7 M parameters, too big for the device; both phases)
# teaches that student once more, online, on the second schedule's settings for 20 epochs.
WIDE_RUN ?= runs/teacher-w
WIDE_EPOCHS ?= 60
KD3_RUN ?= $(RUN)-okdw
# Online distillation as every student here runs it; the teachers are added per step. Expanded
# when used, so that a target's own ARCH_NAME (distill-hr's) applies.
KD_ONLINE = $(PY) -m training.train --arch $(ARCH_NAME) --augment light --teacher-mode online \
  --teacher-weight 0.8 --teacher-temperature 1
# The last student schedule (distill-wide, distill-hr): half the rate, mixup, 20 epochs.
KD_LAST := --lr 5e-4 --warmup 1 --epochs 20 --mixup 0.2
KD := $(KD_ONLINE) $(foreach t,$(TEACHER_RUNS),--teacher $(t)/best.keras)
# What `make convert` ships unless MODEL= says: the first of the wide teacher's student's best
# epoch, the student's weight average (make swa writes it only when it beat the best epoch on
# PublicTest), the student's best epoch (second schedule, then first), phase 2's best, phase 1's.
MODEL ?=
# What `make eval` scores (empty: the shipped model and the float model its card was converted from).
EVAL_MODELS ?=

.PHONY: setup test fuzz demo bench-scenes train finetune teachers distill wide-teacher distill-wide distill-hr swa recover stage model baseline convert eval compare bench lint soak install uninstall vm-test security-report figures test-deps clean

setup: $(STAMP)

# One stamp per role installed into the venv; the desktop role includes everything the device's has.
$(VENV)/.installed-%: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS_$*)]"
	touch $@

# Services the tests start themselves (a real Mosquitto); installed from Debian when missing.
test-deps:
	@missing=""; for b in mosquitto mpd shellcheck systemd-analyze; do command -v $$b >/dev/null || [ -x /usr/sbin/$$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$(echo $$missing | sed 's/systemd-analyze/systemd/') >/dev/null; \
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

finetune: setup
	$(FT) --lr 1e-3 --epochs $(FT_EPOCHS) --out $(FT_RUN)

teachers: finetune
	$(FT) --lr 1e-3 --epochs $(FT_EPOCHS) --seed 2 --out $(FT_RUN)-s2
	$(FT) --lr 5e-4 --epochs 20 --out $(FT_RUN)-lr5e-4

distill: setup
	$(KD) --init $(RUN)/best.keras --lr 1e-3 --warmup 2 --epochs 30 --out $(KD_RUN)
	$(KD) --init $(KD_RUN)/best.keras --lr 5e-4 --warmup 1 --epochs 36 --mixup 0.2 --out $(KD2_RUN)

wide-teacher: setup
	$(MAKE) train RUN=$(WIDE_RUN) ARCH_NAME=teacher EPOCHS=$(WIDE_EPOCHS)
	$(MAKE) finetune RUN=$(WIDE_RUN) ARCH_NAME=teacher

distill-wide: setup
	$(KD_ONLINE) --teacher $(WIDE_RUN)-ft/best.keras --init $(KD2_RUN)/best.keras \
	  $(KD_LAST) --out $(KD3_RUN)

# The edge_hr student (runs/rules16.md): distill-wide's settings, taught online by the shipped
# model (make recover puts it in runs/shipped) and edge_hr's phase 2, starting from the latter.
# Edge_hr's phase 1 and 2 are make train/finetune with ARCH_NAME=edge_hr (models/stages/s15-hr*).
HR_FT_RUN ?= runs/s15-hr-ft
HR_KD_RUN ?= runs/s17-hr-okd
distill-hr: override ARCH_NAME = edge_hr
distill-hr: setup
	$(KD_ONLINE) --teacher $(SHIPPED_RUN)/best.keras --teacher $(HR_FT_RUN)/best.keras \
	  --init $(HR_FT_RUN)/best.keras $(KD_LAST) --out $(HR_KD_RUN)

swa: setup
	$(PY) -m training.swa $(KD2_RUN) --last 3 5 8 12

# The shipped int8 model back in Keras, to train on or teach from (run folders may not outlive a
# session; models/ is in git), and every kept stage (make stage) back into runs/<its name> unless
# that run is still there (its own best.keras, which the int8 copy only approximates).
SHIPPED_RUN ?= runs/shipped
recover: setup
	$(PY) -m training.recover models/moodcam.tflite --out $(SHIPPED_RUN)
	for m in models/stages/*.tflite; do [ -e "$$m" ] || continue; \
	  run="runs/$$(basename "$$m" .tflite)"; \
	  if [ -e "$$run/best.keras" ]; then echo "$$run/best.keras exists: kept (the run's own model, which its int8 stage only approximates; delete it to recover the stage)"; continue; fi; \
	  $(PY) -m training.recover "$$m" --out "$$run" || exit; done

# A model of a recipe that does not fit one session (a teacher, an ensemble member), kept in git as
# int8 for make recover: make stage RUN=runs/b1 -> models/stages/b1.tflite (PublicTest only).
stage: setup
	$(PY) -m convert.convert $(RUN)/best.keras --stage --out models/stages/$(notdir $(RUN)).tflite

# The whole desktop recipe, each step resumable: phase 1, phase 2 and its variants, the distilled
# student and its second schedule, the wide teacher and the student's last schedule, int8 model
# and card. (`make swa` averages a student's last epochs; it did not beat the best epoch.)
model: train teachers distill wide-teacher distill-wide convert

# The poster's seed network (conv 64/128/256, quadrant pooling, dense 200) as the baseline to beat:
# plain cross-entropy on FER2013 labels, light augmentation; figures into models/baseline-seed.
SEED_EPOCHS ?= 30
baseline: setup
	$(PY) -m training.train --arch seed --epochs $(SEED_EPOCHS) --lr 5e-4 --label-smoothing 0 --ferplus off --augment light --out runs/seed
	$(PY) -m training.evaluate runs/seed/best.keras --no-peer --out models/baseline-seed
	$(PY) -m convert.figures

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
