/*
 * prep: the evaluation-time preprocessing of the benchmarks
 * (relloc-protocols(7), FEATURES, KNN, LINEAR), from a decoded 8-bit RGB image to
 * the network's normalised float input.
 *
 * Presets (resize R = 256 and size S = 224 by default):
 *   svm     torchvision Resize(R) (shorter side R, aspect kept, PIL
 *           bilinear), then Resize((S, S)): a warp, no crop; the SVM
 *           feature extraction of section 2.
 *   center  Resize(R), then CenterCrop(S), top = round((H - S) / 2) with
 *           Python's round (halves to even), left likewise; kNN and the
 *           linear probes' test transform (sections 5, 6).
 *   none    the image must already be S x S; used as it is.
 * then ToTensor and Normalize with ImageNet's mean and std, each step in
 * float32 as torchvision does: x = (u8 / 255 - mean[c]) / std[c].
 *
 * Both resizes are img.h's PIL-exact ones (8-bit after each, as PIL
 * images are), so the input matches torchvision on a PIL image byte for
 * byte before normalisation.
 *
 * Not here: decoding (img.h), batching and threads (extract.h), training
 * augmentations (grid.h).
 */
#ifndef RL_PREP_H
#define RL_PREP_H

#include <stddef.h>
#include <stdint.h>

#include "common/img.h"

typedef enum { PREP_SVM, PREP_CENTER, PREP_NONE } PrepMode;

typedef struct {
	PrepMode mode;
	int resize;   /* R: the shorter side after the first resize (256) */
	int size;     /* S: the network input side (224) */
} PrepSpec;

/* ImageNet's mean and std (torchvision's Normalize), RGB. */
extern const float prep_mean[3], prep_std[3];

/* The preset called name ("svm", "center", "none") in *m; 0 or -1. */
int prep_parse(const char *name, PrepMode *m);
/* The name of preset m. */
const char *prep_name(PrepMode m);

/* Scratch memory prep_image reuses between calls; zero it first. */
typedef struct {
	uint8_t *a, *b;
	size_t na, nb;
} PrepBuf;
void prep_buf_free(PrepBuf *pb);

/*
 * out (S, S, 3) = the preprocessed, normalised im (3 bands), channels-last
 * as the engine takes it. Returns 0, or -1 with a message in err: a `none`
 * image that is not S x S, an image the first resize would make empty.
 */
int prep_image(float *out, const Image *im, const PrepSpec *ps, PrepBuf *pb,
    char *err, size_t errlen);

/* The 8-bit S x S x 3 image prep_image normalises, into px; as above. */
int prep_pixels(uint8_t *px, const Image *im, const PrepSpec *ps,
    PrepBuf *pb, char *err, size_t errlen);

/* out[npix*3] = ToTensor + Normalize of npix RGB pixels (HWC kept). */
void prep_normalize(float *out, const uint8_t *px, size_t npix);

/* Python's round((d) / 2) for an integer d >= 0 (halves to even), the
 * offset CenterCrop takes. */
int prep_center_offset(int d);

#endif
