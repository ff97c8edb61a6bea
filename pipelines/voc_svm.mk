# pipelines/voc_svm.mk: the VOC07 SVM benchmark of MMSelfSup
# (relloc-protocols(7), FEATURES and SVM): rl-voc (lists and label matrices) -> rl-extract (the svm
# preset: shorter side 256, warp to 224; Feature1..5) on trainval and on
# test -> rl-svm on each layer -> OUT/voc_svm.md, the seed's "VOC07 SVM"
# row with every layer's mAP and the best layer in bold.
#
#   make -f pipelines/voc_svm.mk VOCDEVKIT=~/data/VOCdevkit CKPT=run/final.safetensors
#   make -f pipelines/voc_svm.mk VOCDEVKIT=~/data/VOCdevkit RANDOM_INIT=0 OUT=out/voc-random
#
# Variables:
#   VOCDEVKIT  a VOCdevkit holding VOC2007, or the VOC2007 directory (required)
#   CKPT       the checkpoint to evaluate, or
#   RANDOM_INIT  a seed: a randomly initialised ARCH instead
#   ARCH       resnet18, resnet34 or resnet50 (default resnet50)
#   OUT        output directory (default out/voc_svm)
#   RESIZE     the extraction's shorter side (default 256)
#   SIZE       the network input, a SIZE x SIZE warp (default 224)
#   LAYERS     the layers scored (default feat1 feat2 feat3 feat4 feat5)
#   SVM_ARGS   more rl-svm options (-j threads, -c costs, -s seed)
#   BIN, THREADS, BATCH_EXTRACT, V: see pipelines/common.mk
#
# Files: OUT/voc/ (rl-voc's trainval.txt, test.txt and *_labels.npy),
# OUT/feat/{trainval,test}_featN.npy (+ .json sidecars), OUT/svm/featN.txt
# (rl-svm's per-class tables), OUT/svm.tsv (layer, mAP), OUT/voc_svm.md,
# OUT/times.tsv (seconds per stage). lowshot.mk reads the same OUT.

OUT      ?= out/voc_svm
RESIZE   ?= 256
SIZE     ?= 224
SVM_ARGS ?=
include $(dir $(lastword $(MAKEFILE_LIST)))common.mk
$(eval $(call voc,$(OUT)))

all: $(OUT)/voc_svm.md
	@cat $<
	@$(PIPE) times $(TIMES)

$(OUT)/voc_svm.md: $(OUT)/svm.tsv
	{ $(PIPE) head Benchmark '$(MODEL_NAME)' && \
	  $(PIPE) row 'VOC07 SVM, best layer (mAP)' best $< && \
	  $(PIPE) row 'VOC07 SVM, $(LAYER_LIST) (mAP)' bestlist $<; } >$@.tmp
	@mv $@.tmp $@

$(eval $(call svm,$(OUT),trainval,test,$(VOC_LABELS_TRAIN),$(VOC_LABELS_TEST),$(SVM_ARGS)))

.PHONY: all
