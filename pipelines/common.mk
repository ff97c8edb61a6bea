# pipelines/common.mk: the pieces every pipeline shares. Included by the
# other pipelines/*.mk, never run by itself.
#
# Variables (each pipeline documents the ones it reads):
#   BIN      directory of the rl-* programs; default: build/ of the
#            checkout this file is in. BIN= (empty) runs the rl-* programs
#            found on PATH (an installed relloc).
#   OUT      output directory (each pipeline sets its own default)
#   ARCH     resnet18, resnet34 or resnet50 (default resnet50)
#   CKPT     a checkpoint (rl-ckpt(5)) to evaluate, or
#   RANDOM_INIT  a seed: evaluate a randomly initialised ARCH instead
#   THREADS  image-decoding threads of rl-sample and rl-extract (default 2)
#   ROOT     where relative image paths of a list are (default: the list's
#            directory, as rl-sample and rl-import take them)
#   BATCH_EXTRACT  images per forward pass of rl-extract (default 16)
#   V        -v (default) shows each tool's progress; V= keeps them quiet
#
# Rebuilding: every stage is a make rule whose target is a file the tool
# writes last (a JSON sidecar, a list file, a table), so plain make reruns
# only what is out of date. A stage's settings are kept in
# OUT/.args/STAGE, rewritten only when they change, and each stage depends
# on its file: changing a variable such as EPOCHS reruns the stages that
# use it and the ones after them, and nothing else. Each stage's wall time
# goes into OUT/times.tsv.

PIPE_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
TOP      := $(abspath $(PIPE_DIR)/..)

BIN     ?= $(TOP)/build
ARCH    ?= resnet50
THREADS ?= 2
BATCH_EXTRACT ?= 16
V       ?= -v

# The program prefix: BIN/ or nothing (PATH).
RL    = $(if $(BIN),$(BIN)/,)
PIPE  = sh $(PIPE_DIR)/pipe.sh
TIMES = $(OUT)/times.tsv

SHELL = /bin/sh
.SUFFIXES:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

# $(call track,NAME,TEXT): the path of OUT/.args/NAME, a file holding TEXT
# that is rewritten only when TEXT differs from what it holds. A rule that
# lists it as a prerequisite reruns when its settings change.
track = $(shell d='$(OUT)/.args'; mkdir -p "$$d" && \
	printf '%s\n' '$(subst ','\'',$2)' >"$$d/$1.new" && \
	if cmp -s "$$d/$1.new" "$$d/$1"; then rm -f "$$d/$1.new"; \
	else mv "$$d/$1.new" "$$d/$1"; fi)$(OUT)/.args/$1

# $(call esc,TEXT): TEXT with its commas as $(comma), so that TEXT, put
# into a template by $(call), stays one argument of the $(call track,...)
# in it.
esc = $(subst $(comma),$$(comma),$1)

# $(call stage,TARGET): a stage's name in the timings: TARGET below OUT.
stage = $(patsubst $(OUT)/%,%,$1)

# The model options of rl-extract from CKPT / RANDOM_INIT, and the file the
# features depend on (the checkpoint).
MODEL_ARGS = -a $(ARCH) $(if $(CKPT),-m $(CKPT),--random-init $(RANDOM_INIT))
MODEL_DEP  = $(CKPT)
# The column name of a model in the tables.
MODEL_NAME = $(if $(CKPT),$(notdir $(CKPT)),random init (seed $(RANDOM_INIT)))
need_model = $(if $(CKPT)$(RANDOM_INIT),,$(error give CKPT=checkpoint or RANDOM_INIT=seed))

# The BatchNorm channels of Feature1..5 for rl-linear -c, by architecture.
CHANNELS_resnet18 = 64,64,128,256,512
CHANNELS_resnet34 = 64,64,128,256,512
CHANNELS_resnet50 = 64,256,512,1024,2048

LAYERS = feat1 feat2 feat3 feat4 feat5

empty :=
space := $(empty) $(empty)
comma := ,
# LAYERS joined by commas.
LAYER_LIST = $(subst $(space),$(comma),$(strip $(LAYERS)))

# --------------------------------------------------------------------------
# Rule templates, instantiated with $(eval $(call NAME,...)).
# D is a model's result directory; its features are in D/feat.

# sample D,LIST,SAMPLE_ARGS
# Grid records of the images of LIST in the LMDB D/grids.lmdb (rl-sample);
# D/sample.done marks it complete (rl-sample writes a directory).
define sample
$1/sample.done: $2 $$(call track,$$(subst /,_,$$(call stage,$1/sample)),$(call esc,$3 $2))
	@$$(PIPE) start $$(TIMES) $$(call stage,$1/sample)
	rm -rf $1/grids.lmdb $$@
	@mkdir -p $1
	$$(RL)rl-sample $$(V) -j $$(THREADS) $3 -l $2 -o $1/grids.lmdb
	@touch $$@
	@$$(PIPE) end $$(TIMES) $$(call stage,$1/sample)
endef

# train D,TRAIN_ARGS
# Relative-Location training on D/grids.lmdb into the run directory D/run
# (rl-train: checkpoints, last.safetensors, metrics.jsonl, curves.png);
# D/train.done marks it complete. A run interrupted with the same settings
# is resumed (--resume); changed settings start a new run.
define train
$1/train.done: $1/sample.done $$(call track,$$(subst /,_,$$(call stage,$1/train)),$(call esc,$2))
	@$$(PIPE) start $$(TIMES) $$(call stage,$1/train)
	rm -f $$@
	@if [ -e $1/run/last.safetensors ] && cmp -s $$(lastword $$^) $1/run/make.args; \
	then echo "resuming $1/run"; else rm -rf $1/run; fi
	@mkdir -p $1/run && cp $$(lastword $$^) $1/run/make.args
	$$(MPIRUN)$$(RL)rl-train $$(V) $2 -i $1/grids.lmdb -o $1/run \
	    $$$$([ -e $1/run/last.safetensors ] && echo --resume)
	@touch $$@
	@$$(PIPE) end $$(TIMES) $$(call stage,$1/train)
$1/run/last.safetensors $1/run/metrics.jsonl: $1/train.done ;
endef

# extract D,SPLIT,LIST,MODEL_ARGS,MODEL_DEP,PREP_ARGS
# D/feat/SPLIT.json, written by rl-extract after SPLIT_feat1..5.npy,
# SPLIT_gap.npy and (for a labelled list) SPLIT_labels.npy. Relative paths
# in LIST are under ROOT, by default LIST's directory (as every tool takes
# them).
define extract
$1/feat/$2.json: $3 $5 $$(call track,$$(subst /,_,$$(call stage,$1/feat/$2)),$(call esc,$4 $6 -b $$(BATCH_EXTRACT) -r $(or $(ROOT),$(dir $3)) $3))
	@$$(PIPE) start $$(TIMES) $$(call stage,$$@)
	@mkdir -p $$(@D)
	$$(RL)rl-extract $$(V) $4 $6 -b $$(BATCH_EXTRACT) -j $$(THREADS) -r $(or $(ROOT),$(dir $3)) -o $$(@D) -p $2 $3
	@$$(PIPE) end $$(TIMES) $$(call stage,$$@)
$1/feat/$2_labels.npy: $1/feat/$2.json ;
endef

# svm D,TRAIN,TEST,TRAIN_LABELS,TEST_LABELS,SVM_ARGS
# The full VOC07 SVM per layer: D/svm/featN.txt (rl-svm's table), then
# D/svm.tsv (layer, mAP). Labels: an N x C 1/0/-1 matrix, or class numbers
# (one-vs-rest).
define svm
$1/svm/%.txt: $1/feat/$2.json $1/feat/$3.json $4 $5 $$(call track,$$(subst /,_,$$(call stage,$1/svm)),$(call esc,$6))
	@$$(PIPE) start $$(TIMES) $$(call stage,$$@)
	@mkdir -p $$(@D)
	$$(RL)rl-svm $$(V) $6 $1/feat/$2_$$*.npy $4 $1/feat/$3_$$*.npy $5 >$$@.tmp
	@mv $$@.tmp $$@
	@$$(PIPE) end $$(TIMES) $$(call stage,$$@)
$1/svm.tsv: $$(LAYERS:%=$1/svm/%.txt)
	$$(PIPE) svm $$^ >$$@.tmp && mv $$@.tmp $$@
endef

# lowshot D,TRAIN,TEST,TRAIN_LABELS,TEST_LABELS,LAYER,SVM_ARGS
# The low-shot SVM on one layer: D/lowshot.txt (rl-svm's table),
# D/lowshot.tsv (k, mAP), D/lowshot.layer (the layer). LAYER is feat1 ..
# feat5, or a TSV of layer mAPs (an svm.tsv) whose best layer is taken
# when the stage runs.
define lowshot
$1/lowshot.txt: $1/feat/$2.json $1/feat/$3.json $4 $5 $(if $(filter feat%,$6),,$6) $$(call track,$$(subst /,_,$$(call stage,$1/lowshot)),$(call esc,$6 $7))
	@$$(PIPE) start $$(TIMES) $$(call stage,$$@)
	l=$(if $(filter feat%,$6),$6,$$$$($$(PIPE) best $6)) && echo "layer $$$$l" && \
	$$(RL)rl-svm $$(V) --lowshot $7 $1/feat/$2_$$$$l.npy $4 $1/feat/$3_$$$$l.npy $5 >$$@.tmp && \
	echo $$$$l >$1/lowshot.layer
	@mv $$@.tmp $$@
	@$$(PIPE) end $$(TIMES) $$(call stage,$$@)
$1/lowshot.tsv: $1/lowshot.txt
	$$(PIPE) lowshot $$< >$$@.tmp && mv $$@.tmp $$@
endef

# linear D,TRAIN,VAL,MHEAD_ARGS,AVGPOOL_ARGS
# The mhead probes on Feature1..5 (D/linear.txt; D/linear.tsv: layer, val
# top-1) and a probe on the global average of layer4 (D/avgpool.txt,
# D/avgpool.tsv; AVGPOOL_ARGS names the recipe, -a avgpool for the
# protocol's). Labels: the lists' (D/feat/*_labels.npy).
define linear
$1/linear.txt: $1/feat/$2.json $1/feat/$3.json $$(call track,$$(subst /,_,$$(call stage,$1/linear)),$(call esc,$4))
	@$$(PIPE) start $$(TIMES) $$(call stage,$$@)
	$$(RL)rl-linear $$(V) -a mhead $4 $1/feat/$2_labels.npy $1/feat/$3_labels.npy \
	    $$(foreach l,$$(LAYERS),$1/feat/$2_$$l.npy $1/feat/$3_$$l.npy) >$$@.tmp
	@mv $$@.tmp $$@
	@$$(PIPE) end $$(TIMES) $$(call stage,$$@)
$1/avgpool.txt: $1/feat/$2.json $1/feat/$3.json $$(call track,$$(subst /,_,$$(call stage,$1/avgpool)),$(call esc,$5))
	@$$(PIPE) start $$(TIMES) $$(call stage,$$@)
	$$(RL)rl-linear $$(V) $5 $1/feat/$2_labels.npy $1/feat/$3_labels.npy \
	    $1/feat/$2_gap.npy $1/feat/$3_gap.npy >$$@.tmp
	@mv $$@.tmp $$@
	@$$(PIPE) end $$(TIMES) $$(call stage,$$@)
$1/linear.tsv: $1/linear.txt
	$$(PIPE) linear $$< $$(LAYER_LIST) >$$@.tmp && mv $$@.tmp $$@
$1/avgpool.tsv: $1/avgpool.txt
	$$(PIPE) linear $$< avgpool >$$@.tmp && mv $$@.tmp $$@
endef

# knn D,TRAIN,VAL,KNN_ARGS[,TRAIN_LIST,VAL_LIST]
# The weighted kNN on the global average of layer4: D/knn.txt, D/knn.tsv
# (k, top-1). Given the lists the features came from (paths absolute, or
# under ROOT, by default the list's directory), also the montage D/knn.png of
# queries and their neighbours.
define knn
$1/knn.txt: $1/feat/$2.json $1/feat/$3.json $5 $6 $$(call track,$$(subst /,_,$$(call stage,$1/knn)),$(call esc,$4 $5 $6))
	@$$(PIPE) start $$(TIMES) $$(call stage,$$@)
	$$(RL)rl-knn $$(V) $4 $(if $5,--montage $1/knn.png $(if $(ROOT),-r $(ROOT)) --bank-list $5 --query-list $6) \
	    $1/feat/$2_gap.npy $1/feat/$2_labels.npy $1/feat/$3_gap.npy $1/feat/$3_labels.npy >$$@.tmp
	@mv $$@.tmp $$@
	@$$(PIPE) end $$(TIMES) $$(call stage,$$@)
$1/knn.tsv: $1/knn.txt
	$$(PIPE) knn $$< >$$@.tmp && mv $$@.tmp $$@
endef


# voc D: VOC2007's lists and label matrices in D/voc (rl-voc, from
# VOCDEVKIT) and the features of trainval and test in D/feat (the svm
# preset at RESIZE and SIZE), for voc_svm.mk and lowshot.mk.
define voc
$$(if $$(VOCDEVKIT),,$$(error give VOCDEVKIT=a VOCdevkit or its VOC2007 directory))
$$(need_model)
VOC_LABELS_TRAIN = $1/voc/trainval_labels.npy
VOC_LABELS_TEST  = $1/voc/test_labels.npy
# rl-voc prints the image counts after writing every file.
$1/voc/counts.txt: $$(call track,$$(subst /,_,$$(call stage,$1/voc)),$(call esc,$$(VOCDEVKIT)))
	@$$(PIPE) start $$(TIMES) $$(call stage,$$@)
	@mkdir -p $$(@D)
	$$(RL)rl-voc -o $$(@D) $$(VOCDEVKIT) >$$@.tmp
	@mv $$@.tmp $$@
	@$$(PIPE) end $$(TIMES) $$(call stage,$$@)
$1/voc/trainval.txt $1/voc/test.txt $1/voc/trainval_labels.npy $1/voc/test_labels.npy: $1/voc/counts.txt ;
$$(eval $$(call extract,$1,trainval,$1/voc/trainval.txt,$$(MODEL_ARGS),$$(MODEL_DEP),-P svm --resize $$(RESIZE) --size $$(SIZE)))
$$(eval $$(call extract,$1,test,$1/voc/test.txt,$$(MODEL_ARGS),$$(MODEL_DEP),-P svm --resize $$(RESIZE) --size $$(SIZE)))
endef

need_lists = $(if $(TRAIN_LIST),,$(error give TRAIN_LIST=list))$(if $(VAL_LIST),,$(error give VAL_LIST=list))

# $(call sample_geometry,PRESET,RESIZE,CROP,PATCH,JITTER,GRAY): rl-sample's
# preset and the geometry options that are set.
sample_geometry = -p $1 $(if $2,--resize $2) $(if $3,--crop $3) \
	$(if $4,--patch $4) $(if $5,--jitter $5) $(if $6,--gray $6)
# rl-train's options from ARCH, BATCH, EPOCHS, LR, WARMUP, MILESTONES, STEPS, SEED.
TRAIN_SETTINGS = -a $(ARCH) -b $(BATCH) --epochs $(EPOCHS) $(if $(LR),--lr $(LR)) \
	--warmup $(WARMUP) --milestones $(MILESTONES) $(if $(STEPS),--max-steps $(STEPS)) -s $(SEED)
