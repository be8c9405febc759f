# The research recipe behind the shipped model, included by the Makefile (so `make distill` etc.
# work from the project root, with the Makefile's PY, RUN, ARCH_NAME and EPOCHS). README's
# "Training" section says what each step does and what it made.

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
SHIPPED_RUN ?= runs/shipped
SEED_EPOCHS ?= 30

.PHONY: finetune teachers distill wide-teacher distill-wide distill-hr swa recover stage model baseline

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

# The edge_hr student (README, make distill-hr; issue 2): distill-wide's settings, taught online
# by the shipped model (make recover puts it in runs/shipped) and edge_hr's phase 2, starting
# from the latter.
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
baseline: setup
	$(PY) -m training.train --arch seed --epochs $(SEED_EPOCHS) --lr 5e-4 --label-smoothing 0 --ferplus off --augment light --out runs/seed
	$(PY) -m training.evaluate runs/seed/best.keras --no-peer --out models/baseline-seed
	$(PY) -m convert.figures
