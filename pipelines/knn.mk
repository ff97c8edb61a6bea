# pipelines/knn.mk: the kNN benchmark of MMSelfSup
# (relloc-protocols(7), KNN): rl-extract (shorter side 256, centre crop 224; layer4's global
# average only) on TRAIN_LIST (the bank) and VAL_LIST (the queries) ->
# rl-knn (cosine similarity, votes exp(sim/0.07)) -> OUT/knn.md, the
# seed's "kNN top-1" row.
#
#   make -f pipelines/knn.mk TRAIN_LIST=in1k/train.txt VAL_LIST=in1k/val.txt CKPT=run/final.safetensors
#
# Variables:
#   TRAIN_LIST, VAL_LIST  `path label' list files, labels 0..C-1 (required)
#   CKPT       the checkpoint to evaluate, or
#   RANDOM_INIT  a seed: a randomly initialised ARCH instead
#   ARCH       resnet18, resnet34 or resnet50 (default resnet50)
#   OUT        output directory (default out/knn)
#   PRESET, RESIZE, SIZE  rl-extract's preprocessing (center, 256, 224)
#   KS         neighbour counts (default 10,20,100,200)
#   KNN_ARGS   more rl-knn options (-t temperature)
#   BIN, THREADS, BATCH_EXTRACT, V: see pipelines/common.mk
#
# Files: OUT/feat/{train,val}_gap.npy and _labels.npy (+ sidecars),
# OUT/knn.txt (rl-knn's table), OUT/knn.tsv (k, top-1), OUT/knn.md,
# OUT/times.tsv.

OUT      ?= out/knn
PRESET   ?= center
RESIZE   ?= 256
SIZE     ?= 224
KS       ?= 10,20,100,200
include $(dir $(lastword $(MAKEFILE_LIST)))common.mk
$(call need_lists)
$(call need_model)

all: $(OUT)/knn.md
	@cat $<
	@$(PIPE) times $(TIMES)

$(OUT)/knn.md: $(OUT)/knn.tsv
	{ $(PIPE) head Benchmark '$(MODEL_NAME)' && \
	  $(PIPE) row "kNN top-1, k = $$($(PIPE) keys $<)" list $<; } >$@.tmp
	@mv $@.tmp $@

$(eval $(call extract,$(OUT),train,$(TRAIN_LIST),$(MODEL_ARGS),$(MODEL_DEP),-L gap -P $(PRESET) --resize $(RESIZE) --size $(SIZE)))
$(eval $(call extract,$(OUT),val,$(VAL_LIST),$(MODEL_ARGS),$(MODEL_DEP),-L gap -P $(PRESET) --resize $(RESIZE) --size $(SIZE)))
$(eval $(call knn,$(OUT),train,val,-k $(KS) $(KNN_ARGS)))

.PHONY: all
