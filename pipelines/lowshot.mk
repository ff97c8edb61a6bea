# pipelines/lowshot.mk: the VOC07 low-shot SVM of MMSelfSup (protocols.md
# section 4) on one layer: for each k, 5 samples of k positives and 19k
# negatives per class, one SVM per class and cost, the cost chosen by mean
# test mAP -> OUT/lowshot_LAYER.md, the seed's low-shot row.
#
#   make -f pipelines/lowshot.mk VOCDEVKIT=~/data/VOCdevkit CKPT=run/final.safetensors
#   make -f pipelines/lowshot.mk VOCDEVKIT=... CKPT=... LAYER=feat4
#
# Without LAYER it scores the best layer of voc_svm.mk's table in the same
# OUT (running the full SVM on every layer first if that table is not
# there); LAYER=feat4 (the layer MMSelfSup reports) needs only that layer.
#
# Variables:
#   VOCDEVKIT, CKPT or RANDOM_INIT, ARCH, RESIZE, SIZE: as voc_svm.mk
#   OUT        output directory (default out/voc_svm, voc_svm.mk's)
#   LAYER      feat1 .. feat5 (default: the best layer of OUT/svm.tsv)
#   SHOTS      the k values (default 1,2,4,8,16,32,64,96)
#   SAMPLES    samples per k (default 5)
#   LOWSHOT_ARGS  more rl-svm options (default -j 2)
#   SVM_ARGS   rl-svm options of the full SVM, when it has to run
#   BIN, THREADS, BATCH_EXTRACT, V: see pipelines/common.mk
#
# Files: as voc_svm.mk, plus OUT/lowshot_LAYER.txt (rl-svm's table),
# OUT/lowshot_LAYER.tsv (k, mAP) and OUT/lowshot_LAYER.md.

OUT      ?= out/voc_svm
RESIZE   ?= 256
SIZE     ?= 224
SHOTS    ?= 1,2,4,8,16,32,64,96
SAMPLES  ?= 5
LOWSHOT_ARGS ?= -j 2
SVM_ARGS ?= -j 2
include $(dir $(lastword $(MAKEFILE_LIST)))common.mk

$(eval $(call voc,$(OUT)))

ifeq ($(LAYER),)
# The best layer is known only once the full SVM has run: run it, then
# this file again with LAYER set.
all: $(OUT)/svm.tsv
	@$(MAKE) --no-print-directory -f $(PIPE_DIR)/lowshot.mk LAYER=$$($(PIPE) best $<)
$(eval $(call svm,$(OUT),trainval,test,$(VOC_LABELS_TRAIN),$(VOC_LABELS_TEST),$(SVM_ARGS)))
else
all: $(OUT)/lowshot_$(LAYER).md
	@cat $<
	@$(PIPE) times $(TIMES)

$(OUT)/lowshot_$(LAYER).md: $(OUT)/lowshot_$(LAYER).tsv
	{ $(PIPE) head Benchmark '$(MODEL_NAME)' && \
	  $(PIPE) row "VOC07 low-shot SVM ($(LAYER)), k = $$($(PIPE) keys $<) (mAP)" list $<; } >$@.tmp
	@mv $@.tmp $@

$(eval $(call lowshot,$(OUT),trainval,test,$(VOC_LABELS_TRAIN),$(VOC_LABELS_TEST),$(LAYER),-k $(SHOTS) -n $(SAMPLES) $(LOWSHOT_ARGS)))
endif

.PHONY: all
