# pipelines/pretrain.mk: Relative-Location pretraining
# (relloc-protocols(7), SAMPLING, MODEL and OPTIMISATION): rl-sample cuts patch grids from the images of IMAGES into an
# LMDB, then rl-train trains a ResNet on them into OUT/run, whose
# last.safetensors (rl-ckpt(5)) the other pipelines take as CKPT.
#
#   make -f pipelines/pretrain.mk IMAGES=in1k/train.txt                 # the recipe
#   make -f pipelines/pretrain.mk IMAGES=fm/train.txt ARCH=resnet18 RESIZE=96 CROP=90 \
#       PATCH=24 BATCH=64 EPOCHS=2 WARMUP=0 MILESTONES=1     # small images
#   make -f pipelines/pretrain.mk IMAGES=in1k/train.txt NP=8 HOSTFILE=hosts \
#       TRAIN_ARGS=--mmselfsup-batching    # the recipe's step on 8 machines
#
# The defaults are MMSelfSup's recipe: the mmselfsup preset (shorter side
# 292, crop 255, 64 px patches, grey with p 0.66), ResNet-50, 512 images a
# step, lr 0.2 with 5 warmup epochs, steps at epochs 30 and 50, 70 epochs.
# The LMDB holds GRIDS grids per image, drawn once; rl-train visits them
# in a new order each epoch (the recipe draws new grids every epoch).
#
# Variables:
#   IMAGES     a list file of images, `path [label]' a line (required)
#   OUT        output directory (default out/pretrain)
#   PRESET     rl-sample preset: mmselfsup or doersch2015 (default mmselfsup)
#   RESIZE, CROP, PATCH, JITTER, GRAY  the preset's geometry and grey
#              probability, overridden when set (rl-sample(1))
#   GRIDS      grids per image in the LMDB (default 1)
#   SAMPLE_ARGS  more rl-sample options (-s seed, --chroma ...)
#   ARCH       resnet18, resnet34 or resnet50 (default resnet50)
#   BATCH      images per step (default 512)
#   SHARD      images per shard, each with its own batch statistics
#              (default 64 when BATCH is 512: the recipe's 8 GPUs x 64;
#              otherwise the whole step)
#   NP         run rl-train as NP ranks through mpirun (default: one
#              process, no mpirun); the shards per step must be a
#              multiple of NP
#   HOSTFILE   with NP: Open MPI's host file of the machines (one rank
#              per slot); the LMDB and OUT must be on storage every
#              machine reads at the same path
#   MPIRUN_ARGS  with NP: more mpirun options (default --bind-to none)
#   EPOCHS     epochs (default 70)
#   LR         peak learning rate (default: rl-train's, 0.2 x BATCH / 512)
#   WARMUP     warmup epochs (default 5)
#   MILESTONES epochs where the lr drops tenfold (default 30,50)
#   STEPS      stop after this many steps (default: none)
#   SEED       seed of rl-sample and rl-train (default 0)
#   TRAIN_ARGS more rl-train options (--log-every, --ckpt-epochs, ...)
#   BIN, THREADS, V: see pipelines/common.mk
#
# Files: OUT/grids.lmdb (+ OUT/sample.done), OUT/run/ (rl-train's run
# directory: last.safetensors, metrics.jsonl, curves.png; + OUT/train.done),
# OUT/times.tsv.

OUT        ?= out/pretrain
PRESET     ?= mmselfsup
GRIDS      ?= 1
BATCH      ?= 512
EPOCHS     ?= 70
WARMUP     ?= 5
MILESTONES ?= 30,50
SEED       ?= 0
SHARD      ?= $(if $(filter 512,$(BATCH)),64)
MPIRUN_ARGS ?= --bind-to none
ifneq ($(NP),)
MPIRUN = mpirun -np $(NP) $(if $(HOSTFILE),--hostfile $(HOSTFILE)) $(MPIRUN_ARGS) $(empty)
endif
include $(dir $(lastword $(MAKEFILE_LIST)))common.mk
ifeq ($(IMAGES),)
$(error give IMAGES=a list file of images)
endif

all: $(OUT)/train.done
	@echo "checkpoint: $(OUT)/run/last.safetensors"
	@$(PIPE) times $(TIMES)

$(eval $(call sample,$(OUT),$(IMAGES),$(call sample_geometry,$(PRESET),$(RESIZE),$(CROP),$(PATCH),$(JITTER),$(GRAY)) -n $(GRIDS) -s $(SEED) $(SAMPLE_ARGS)))
$(eval $(call train,$(OUT),$(TRAIN_SETTINGS) $(if $(SHARD),--shard $(SHARD)) $(TRAIN_ARGS)))

.PHONY: all
