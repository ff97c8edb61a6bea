# pipelines/lowshot.mk: the VOC07 low-shot SVM of MMSelfSup
# (relloc-protocols(7), LOW-SHOT) on one layer: for each k, 5 samples of k positives and 19k
# negatives per class, one SVM per class and cost, the cost chosen by mean
# test mAP -> OUT/lowshot.md, the seed's low-shot row.
#
#   make -f pipelines/lowshot.mk VOCDEVKIT=~/data/VOCdevkit CKPT=run/final.safetensors
#   make -f pipelines/lowshot.mk VOCDEVKIT=... CKPT=... LAYER=feat4
#
# Without LAYER it scores the best layer of voc_svm.mk's table in the same
# OUT (running the full SVM on every layer first if that table is not
# there); LAYER=feat4 (the layer MMSelfSup reports) needs only that layer.
# A changed best layer (the full SVM rerun) reruns the low-shot SVM.
#
# Variables:
#   VOCDEVKIT, CKPT or RANDOM_INIT, ARCH, RESIZE, SIZE: as voc_svm.mk
#   OUT        output directory (default out/voc_svm, voc_svm.mk's)
#   LAYER      feat1 .. feat5 (default: the best layer of OUT/svm.tsv)
#   SHOTS      the k values (default 1,2,4,8,16,32,64,96)
#   SAMPLES    samples per k (default 5)
#   LOWSHOT_ARGS  more rl-svm options (-j threads, -s seed)
#   SVM_ARGS   rl-svm options of the full SVM, when it has to run
#   BIN, THREADS, BATCH_EXTRACT, V: see pipelines/common.mk
#
# Files: as voc_svm.mk, plus OUT/lowshot.txt (rl-svm's table),
# OUT/lowshot.layer (the layer scored), OUT/lowshot.tsv (k, mAP) and
# OUT/lowshot.md.

OUT      ?= out/voc_svm
RESIZE   ?= 256
SIZE     ?= 224
SHOTS    ?= 1,2,4,8,16,32,64,96
SAMPLES  ?= 5
LOWSHOT_ARGS ?=
SVM_ARGS ?=
include $(dir $(lastword $(MAKEFILE_LIST)))common.mk

$(eval $(call voc,$(OUT)))

# Without LAYER, the best layer of OUT/svm.tsv (the full SVM on every layer).
ifeq ($(LAYER),)
$(eval $(call svm,$(OUT),trainval,test,$(VOC_LABELS_TRAIN),$(VOC_LABELS_TEST),$(SVM_ARGS)))
endif

all: $(OUT)/lowshot.md
	@cat $<
	@$(PIPE) times $(TIMES)

$(OUT)/lowshot.md: $(OUT)/lowshot.tsv
	{ $(PIPE) head Benchmark '$(MODEL_NAME)' && \
	  $(PIPE) row "VOC07 low-shot SVM ($$(cat $(OUT)/lowshot.layer)), k = $$($(PIPE) keys $<) (mAP)" list $<; } >$@.tmp
	@mv $@.tmp $@

$(eval $(call lowshot,$(OUT),trainval,test,$(VOC_LABELS_TRAIN),$(VOC_LABELS_TEST),$(or $(LAYER),$(OUT)/svm.tsv),-k $(SHOTS) -n $(SAMPLES) $(LOWSHOT_ARGS)))

.PHONY: all
