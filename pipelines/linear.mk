# pipelines/linear.mk: the linear evaluations of MMSelfSup
# (relloc-protocols(7), LINEAR) on frozen features: rl-extract (the test transform: shorter
# side 256, centre crop 224) on TRAIN_LIST and VAL_LIST -> rl-linear, the
# mhead recipe on Feature1..5 (BatchNorm without affine, one head per
# stage) and the AvgPool recipe on layer4's global average ->
# OUT/linear.md, the seed's "mhead linear" and "AvgPool linear" rows.
#
#   make -f pipelines/linear.mk TRAIN_LIST=in1k/train.txt VAL_LIST=in1k/val.txt CKPT=run/final.safetensors
#
# rl-linear trains on features computed once, without the protocol's
# augmentations (rl-linear(1), CAVEATS).
#
# Variables:
#   TRAIN_LIST, VAL_LIST  `path label' list files, labels 0..C-1 (required)
#   CKPT       the checkpoint to evaluate, or
#   RANDOM_INIT  a seed: a randomly initialised ARCH instead
#   ARCH       resnet18, resnet34 or resnet50 (default resnet50)
#   OUT        output directory (default out/linear)
#   PRESET     rl-extract's preprocessing (default center; svm warps)
#   RESIZE, SIZE  its shorter side and input side (default 256, 224)
#   MHEAD_EPOCHS    epochs of the mhead probes (default 90, the protocol's)
#   AVGPOOL_EPOCHS  epochs of the AvgPool probe (default 100)
#   MHEAD_ARGS, AVGPOOL_ARGS  more rl-linear options (-b, -l, -s, -w)
#   BIN, THREADS, BATCH_EXTRACT, V: see pipelines/common.mk
#
# Files: OUT/feat/{train,val}_* (features, labels, sidecars),
# OUT/linear.txt and OUT/avgpool.txt (rl-linear's tables), OUT/linear.tsv
# and OUT/avgpool.tsv (head, val top-1), OUT/linear.md, OUT/times.tsv.

OUT      ?= out/linear
PRESET   ?= center
RESIZE   ?= 256
SIZE     ?= 224
MHEAD_EPOCHS   ?= 90
AVGPOOL_EPOCHS ?= 100
include $(dir $(lastword $(MAKEFILE_LIST)))common.mk
$(call need_lists)
$(call need_model)

all: $(OUT)/linear.md
	@cat $<
	@$(PIPE) times $(TIMES)

$(OUT)/linear.md: $(OUT)/linear.tsv $(OUT)/avgpool.tsv
	{ $(PIPE) head Benchmark '$(MODEL_NAME)' && \
	  $(PIPE) row 'Linear mhead, $(LAYER_LIST) (top-1)' bestlist $< && \
	  $(PIPE) row 'Linear AvgPool (top-1)' one $(OUT)/avgpool.tsv; } >$@.tmp
	@mv $@.tmp $@

$(eval $(call extract,$(OUT),train,$(TRAIN_LIST),$(MODEL_ARGS),$(MODEL_DEP),-P $(PRESET) --resize $(RESIZE) --size $(SIZE)))
$(eval $(call extract,$(OUT),val,$(VAL_LIST),$(MODEL_ARGS),$(MODEL_DEP),-P $(PRESET) --resize $(RESIZE) --size $(SIZE)))
$(eval $(call linear,$(OUT),train,val,-e $(MHEAD_EPOCHS) -c $(CHANNELS_$(ARCH)) $(MHEAD_ARGS),-a avgpool -e $(AVGPOOL_EPOCHS) $(AVGPOOL_ARGS)))

.PHONY: all
