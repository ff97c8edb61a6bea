# pipelines/fashion.mk: the whole method on Fashion-MNIST in minutes, the
# pipeline behind `make demo`. Debian's dataset-fashion-mnist (28x28 grey
# images of 10 kinds of clothing) is imported with rl-import; a ResNet-18
# is pretrained on Relative Location with a geometry fitted to the small
# images (scaled up to RESIZE, CROP window, PATCH px patches); then the
# pretrained backbone and a randomly initialised one of the same
# architecture go through every benchmark, on features extracted once
# (shorter side EVAL_SIZE, the svm preset, which for square images is one
# resize):
#   - the SVM per layer feat1..feat5 (the VOC07 protocol; the 10 classes
#     one-vs-rest; trained on the train subset, tested on the test subset),
#   - the low-shot SVM on the pretrained model's best layer,
#   - the mhead linear probes on Feature1..5 and the AvgPool probe,
#   - kNN on layer4's global average (bank: train subset, queries: test),
# into OUT/results.md: tables laid out like the seed's
# (relloc-protocols(7), REPORTED NUMBERS), a column per model, with the
# pretext accuracy, the training curves (OUT/pretrain/run/curves.png), kNN
# montages (OUT/*/knn.png) and the
# time of every stage.
#
#   make -f pipelines/fashion.mk                 # what `make demo` runs
#   make -f pipelines/fashion.mk N_TRAIN=20000 EPOCHS=4 OUT=out/fm-big
#
# Deviation: the protocol's AvgPool probe (no normalisation, lr 30) diverges
# on these features, whose scale depends on each backbone's batch-norm
# statistics (10 times larger after pretraining than at random init), so
# the row "Linear AvgPool" is the mhead recipe (BatchNorm without affine
# parameters, lr 0.01) on the same 512-d average, which sees both backbones
# alike. AVGPOOL_RECIPE=avgpool gives the protocol's.
#
# The sizes are chosen so that a fresh 2-core machine runs it in about 13
# minutes (build included); see README.md for the time each stage took.
#
# Variables:
#   OUT        output directory (default out/fashion)
#   N_PRETRAIN training images the pretraining samples from
#   N_TRAIN    training images of the benchmarks (SVM, linear, kNN bank)
#   N_TEST     test images (SVM test, linear validation, kNN queries)
#   ARCH       the backbone of both models (default resnet18)
#   RESIZE, CROP, PATCH  the pretraining geometry (rl-sample): images
#              scaled to RESIZE, a CROP window, PATCH px patches
#   GRIDS      grids per image in the LMDB
#   BATCH, EPOCHS, LR, WARMUP, MILESTONES, STEPS  rl-train (see pretrain.mk)
#   SEED       seed of sampling and training (default 0)
#   RANDOM_SEED  seed of the random-init baseline (default 0)
#   EVAL_SIZE  side of the images the features are extracted from
#   SHOTS, SAMPLES  the low-shot k values and samples per k
#   MHEAD_EPOCHS, AVGPOOL_EPOCHS  epochs of the linear probes
#   AVGPOOL_RECIPE  rl-linear's recipe for the probe on layer4's average:
#              mhead (default: with BatchNorm, lr 0.01) or avgpool (the
#              protocol's: no BatchNorm, lr 30). See below.
#   KS         kNN neighbour counts
#   SVM_ARGS, LOWSHOT_ARGS, MHEAD_ARGS, AVGPOOL_ARGS, KNN_ARGS, TRAIN_ARGS,
#   SAMPLE_ARGS  more options of the tools
#   BIN, THREADS, BATCH_EXTRACT, V: see pipelines/common.mk
#
# Files: OUT/data/ (PNGs and lists), OUT/pretrain/ (grids.lmdb, run/),
# OUT/relloc/ and OUT/random/ (feat/, svm/, *.txt, *.tsv, knn.png),
# OUT/results.md, OUT/times.tsv.

OUT        ?= out/fashion
N_PRETRAIN ?= 20000
N_TRAIN    ?= 1500
N_TEST     ?= 2000
ARCH       ?= resnet18
RESIZE     ?= 96
CROP       ?= 90
PATCH      ?= 24
GRIDS      ?= 2
BATCH      ?= 64
EPOCHS     ?= 1
WARMUP     ?= 0
MILESTONES ?= 1
SEED       ?= 0
RANDOM_SEED ?= 0
EVAL_SIZE  ?= 192
SHOTS      ?= 1,2,4,8,16,32,64,96
SAMPLES    ?= 5
MHEAD_EPOCHS   ?= 30
AVGPOOL_EPOCHS ?= 30
AVGPOOL_RECIPE ?= mhead
KS         ?= 10,20,100,200
include $(dir $(lastword $(MAKEFILE_LIST)))common.mk

DATA   = $(OUT)/data
ABSDATA = $(abspath $(DATA))
PRE    = $(OUT)/pretrain
MODELS = relloc random
COLUMNS = 'RL-pretrained $(ARCH)' 'random init $(ARCH)'
NIMPORT = $(shell n=$(N_PRETRAIN); [ $(N_TRAIN) -gt $$n ] && n=$(N_TRAIN); \
	[ $(N_TEST) -gt $$n ] && n=$(N_TEST); echo $$n)

all: $(OUT)/results.md
	@echo
	@cat $<

# --------------------------------------------------------------------------
# data: the first NIMPORT images of each split, then the subsets as lists
# of absolute paths (the kNN montage reads them too).

$(OUT)/import.done: $(call track,import,$(NIMPORT))
	@$(PIPE) start $(TIMES) import
	rm -rf $(DATA) $@
	$(RL)rl-import $(V) -n $(NIMPORT) fashion-mnist $(DATA)
	@touch $@
	@$(PIPE) end $(TIMES) import

# subset NAME,SPLIT,COUNT: DATA/NAME.txt, the first COUNT lines of SPLIT,
# left untouched when they are the same (a new import reruns nothing else).
define subset
$(DATA)/$1.txt: $(OUT)/import.done $$(call track,subset-$1,$3)
	awk -v d=$(ABSDATA) 'NR <= $3 { print d "/" $$$$0 }' $(DATA)/$2.txt >$$@.tmp
	@[ $$$$(wc -l <$$@.tmp) -eq $3 ] || { echo "$$@: fewer than $3 images" >&2; exit 1; }
	@if cmp -s $$@.tmp $$@; then rm $$@.tmp; else mv $$@.tmp $$@; fi
endef
$(eval $(call subset,pretrain,train,$(N_PRETRAIN)))
$(eval $(call subset,bank,train,$(N_TRAIN)))
$(eval $(call subset,query,test,$(N_TEST)))

# --------------------------------------------------------------------------
# pretraining

$(eval $(call sample,$(PRE),$(DATA)/pretrain.txt,$(call sample_geometry,mmselfsup,$(RESIZE),$(CROP),$(PATCH),,) -n $(GRIDS) -s $(SEED) $(SAMPLE_ARGS)))
$(eval $(call train,$(PRE),$(TRAIN_SETTINGS) $(TRAIN_ARGS)))

# --------------------------------------------------------------------------
# the benchmarks, for each model

MODEL_relloc = -a $(ARCH) -m $(PRE)/run/last.safetensors
DEP_relloc   = $(PRE)/train.done
MODEL_random = -a $(ARCH) --random-init $(RANDOM_SEED)
DEP_random   =
PREP = -P svm --resize $(EVAL_SIZE) --size $(EVAL_SIZE)

B = $(OUT)/$m
L = $(OUT)/$m/feat
$(foreach m,$(MODELS),$(eval $(call extract,$B,train,$(DATA)/bank.txt,$(MODEL_$m),$(DEP_$m),$(PREP))))
$(foreach m,$(MODELS),$(eval $(call extract,$B,test,$(DATA)/query.txt,$(MODEL_$m),$(DEP_$m),$(PREP))))
$(foreach m,$(MODELS),$(eval $(call svm,$B,train,test,$L/train_labels.npy,$L/test_labels.npy,$(SVM_ARGS))))
# both models' low-shot SVM on the pretrained model's best layer
$(foreach m,$(MODELS),$(eval $(call lowshot,$B,train,test,$L/train_labels.npy,$L/test_labels.npy,$(OUT)/relloc/svm.tsv,-k $(SHOTS) -n $(SAMPLES) $(LOWSHOT_ARGS))))
$(foreach m,$(MODELS),$(eval $(call linear,$B,train,test,-e $(MHEAD_EPOCHS) -c $(CHANNELS_$(ARCH)) $(MHEAD_ARGS),-a $(AVGPOOL_RECIPE) -e $(AVGPOOL_EPOCHS) $(AVGPOOL_ARGS))))
$(foreach m,$(MODELS),$(eval $(call knn,$B,train,test,-k $(KS) $(KNN_ARGS),$(DATA)/bank.txt,$(DATA)/query.txt)))

# --------------------------------------------------------------------------
# the report

TSVS = svm.tsv lowshot.tsv linear.tsv avgpool.tsv knn.tsv
$(OUT)/results.md: $(foreach m,$(MODELS),$(TSVS:%=$(OUT)/$m/%)) $(PRE)/run/metrics.jsonl
	{ echo '# Relative Location on Fashion-MNIST'; echo; \
	  echo 'Pretrained: $(ARCH), $(N_PRETRAIN) training images x $(GRIDS) grids,' \
	    '$(EPOCHS) epoch(s) of batch $(BATCH) (images $(RESIZE) px, crop $(CROP), patches $(PATCH) px);' \
	    "$$($(PIPE) pretext $(PRE)/run/metrics.jsonl)."; \
	  echo 'Benchmarks: $(N_TRAIN) training and $(N_TEST) test images at $(EVAL_SIZE) px;' \
	    'the baseline is the same $(ARCH) randomly initialised (seed $(RANDOM_SEED)).'; echo; \
	  $(PIPE) head Benchmark $(COLUMNS) && \
	  $(PIPE) row 'SVM, best layer (mAP)' best $(OUT)/relloc/svm.tsv $(OUT)/random/svm.tsv && \
	  $(PIPE) row 'SVM, $(LAYER_LIST) (mAP)' bestlist $(OUT)/relloc/svm.tsv $(OUT)/random/svm.tsv && \
	  $(PIPE) row "Low-shot SVM ($$(cat $(OUT)/relloc/lowshot.layer)), k = $$($(PIPE) keys $(OUT)/relloc/lowshot.tsv) (mAP)" \
	    list $(OUT)/relloc/lowshot.tsv $(OUT)/random/lowshot.tsv && \
	  $(PIPE) row 'Linear mhead, $(LAYER_LIST) (top-1)' bestlist $(OUT)/relloc/linear.tsv $(OUT)/random/linear.tsv && \
	  $(PIPE) row 'Linear AvgPool$(if $(filter mhead,$(AVGPOOL_RECIPE)), (BatchNorm; mhead recipe)) (top-1)' one $(OUT)/relloc/avgpool.tsv $(OUT)/random/avgpool.tsv && \
	  $(PIPE) row "kNN top-1, k = $$($(PIPE) keys $(OUT)/relloc/knn.tsv)" list $(OUT)/relloc/knn.tsv $(OUT)/random/knn.tsv && \
	  echo && echo "RL-pretrained beats random init on $$($(PIPE) wins $(OUT)/relloc/svm.tsv $(OUT)/random/svm.tsv) SVM layers," \
	    "$$($(PIPE) wins $(OUT)/relloc/linear.tsv $(OUT)/random/linear.tsv) mhead layers," \
	    "$$($(PIPE) wins $(OUT)/relloc/lowshot.tsv $(OUT)/random/lowshot.tsv) low-shot k values" \
	    "and $$($(PIPE) wins $(OUT)/relloc/knn.tsv $(OUT)/random/knn.tsv) kNN k values." && \
	  echo && echo 'Pretraining (pretrain/run/curves.png):' && echo && echo '![training curves](pretrain/run/curves.png)' && \
	  echo && echo 'Test images and their nearest training images, green when the class agrees' \
	    '(relloc/knn.png, random/knn.png):' && echo && \
	  echo '| RL-pretrained | random init |' && echo '|---|---|' && \
	  echo '| ![kNN, RL-pretrained](relloc/knn.png) | ![kNN, random init](random/knn.png) |' && \
	  echo && $(PIPE) times $(TIMES); } >$@.tmp
	@mv $@.tmp $@

.PHONY: all
