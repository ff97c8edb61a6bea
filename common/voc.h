/*
 * voc: PASCAL VOC classification annotations (ImageSets/Main) read into
 * image ids and a label matrix, the form MMSelfSup's SVM benchmark uses
 * (tools/data_converters/create_voc_data_files.py).
 *
 * A split (trainval, test, ...) is read from the 20 files
 * ImageSets/Main/<class>_<split>.txt, each a line `id value` per image with
 * value 1 (present), -1 (absent) or 0 (difficult). Ids are sorted in
 * ascending (byte) order and the values remapped to MMSelfSup's SVMLabels
 * convention: 1 present, 0 absent, -1 difficult. Every class file must
 * list the same ids once each.
 *
 * Does not read the XML annotations (boxes, truncation), decode images or
 * check that they exist; the tool does the last.
 */
#ifndef RL_VOC_H
#define RL_VOC_H

#include <stddef.h>
#include <stdint.h>

#define VOC_NCLASS 20

/* The 20 class names in alphabetical order: the label matrix's columns. */
extern const char *const voc_class[VOC_NCLASS];

typedef struct {
	size_t n;         /* images */
	char **id;        /* n ids, ascending; owned */
	int32_t *label;   /* n x VOC_NCLASS, row-major, in {1, 0, -1}; owned */
} VocSplit;

/*
 * Read split `split` from the directory `dir` that holds ImageSets/Main
 * (a VOC2007 directory). s is overwritten. Returns 0, or -1 with one line
 * naming the file (and line) in err: a missing class file, a malformed
 * line (not two fields, a value other than 1, 0, -1), an id listed twice,
 * an id missing from one class file that another lists, an empty split.
 */
int voc_split_read(VocSplit *s, const char *dir, const char *split,
    char *err, size_t errlen);
void voc_split_free(VocSplit *s);

/*
 * The image path of id in dir: "<dir>/JPEGImages/<id>.jpg", newly
 * allocated (free it).
 */
char *voc_image_path(const char *dir, const char *id);

#endif
