/* t_voc: the VOC class-file reader on tiny trees written here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/voc.h"
#include "tests/check.h"
#include "tests/helpers.h"

static char root[64];

/* Value of image i (of 4) for class c in the VOC file convention. */
static int
voc_value(int i, int c)
{
	return (i + c) % 3 == 0 ? 1 : (i + c) % 3 == 1 ? -1 : 0;
}

/*
 * Write <root>/ImageSets/Main/<class>_<split>.txt for every class, with
 * ids 000012, 000005, 000009, 000017 in that (unsorted) order.
 */
static void
tree_make(const char *split)
{
	static const char *ids[4] = {"000012", "000005", "000009", "000017"};
	char path[256];

	snprintf(path, sizeof path, "%s/ImageSets", root);
	mkdir(path, 0777);
	snprintf(path, sizeof path, "%s/ImageSets/Main", root);
	mkdir(path, 0777);
	for (int c = 0; c < VOC_NCLASS; c++) {
		snprintf(path, sizeof path, "%s/ImageSets/Main/%s_%s.txt", root,
		    voc_class[c], split);
		FILE *fp = fopen(path, "w");
		for (int i = 0; i < 4; i++)
			fprintf(fp, "%s %s%d\n", ids[i],
			    voc_value(i, c) < 0 ? "" : " ", voc_value(i, c));
		fclose(fp);
	}
}

/* Overwrite one class file with text. */
static void
class_write(const char *cls, const char *split, const char *text)
{
	char path[256];

	snprintf(path, sizeof path, "%s/ImageSets/Main/%s_%s.txt", root, cls,
	    split);
	FILE *fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
}

TEST(classes)
{
	CHECK(!strcmp(voc_class[0], "aeroplane"), "first");
	CHECK(!strcmp(voc_class[19], "tvmonitor"), "last");
	for (int c = 1; c < VOC_NCLASS; c++)
		CHECK(strcmp(voc_class[c - 1], voc_class[c]) < 0,
		    "not sorted at %d", c);
}

TEST(read_ok)
{
	/* file order 12, 5, 9, 17 -> sorted 5, 9, 12, 17 = file rows 1,2,0,3 */
	static const int row[4] = {1, 2, 0, 3};
	static const char *want[4] = {"000005", "000009", "000012", "000017"};
	VocSplit s;
	char err[256];

	tree_make("trainval");
	CHECK(voc_split_read(&s, root, "trainval", err, sizeof err) == 0,
	    "%s", err);
	CHECK(s.n == 4, "n = %zu", s.n);
	if (s.n != 4)
		return;
	for (int i = 0; i < 4; i++) {
		CHECK(!strcmp(s.id[i], want[i]), "id %d = %s", i, s.id[i]);
		for (int c = 0; c < VOC_NCLASS; c++) {
			int v = voc_value(row[i], c);
			int exp = v == 1 ? 1 : v == -1 ? 0 : -1;
			CHECK(s.label[i * VOC_NCLASS + c] == exp,
			    "label[%d][%d] = %d, want %d", i, c,
			    s.label[i * VOC_NCLASS + c], exp);
		}
	}
	voc_split_free(&s);
	char *p = voc_image_path("/d", "000005");
	CHECK(!strcmp(p, "/d/JPEGImages/000005.jpg"), "%s", p);
	free(p);
}

/* voc_split_read must fail and err must contain want. */
static void
expect_fail(const char *split, const char *want)
{
	VocSplit s;
	char err[256] = "";

	CHECK(voc_split_read(&s, root, split, err, sizeof err) < 0,
	    "accepted (want %s)", want);
	CHECK(strstr(err, want) != NULL, "err '%s' lacks '%s'", err, want);
	CHECK(s.n == 0 && s.id == NULL && s.label == NULL, "not reset");
}

TEST(missing_file)
{
	char path[256];

	tree_make("x1");
	snprintf(path, sizeof path, "%s/ImageSets/Main/cow_x1.txt", root);
	unlink(path);
	expect_fail("x1", "cow_x1.txt: No such file");
	expect_fail("nosuchsplit", "aeroplane_nosuchsplit.txt");
}

TEST(ids_disagree)
{
	tree_make("x2");
	class_write("dog", "x2", "000012 1\n000005 1\n000009 1\n000018 1\n");
	expect_fail("x2", "dog_x2.txt: lacks id 000017, which");
	class_write("dog", "x2", "000012 1\n000005 1\n000009 1\n000007 1\n");
	expect_fail("x2", "dog_x2.txt:4: id 000007 is not in");
	class_write("dog", "x2", "000012 1\n000005 1\n000009 1\n");
	expect_fail("x2", "dog_x2.txt: lacks id 000017");
	class_write("dog", "x2", "000012 1\n000005 1\n000009 1\n000017 1\n"
	    "000001 0\n");
	expect_fail("x2", "dog_x2.txt:5: id 000001 is not in");
	class_write("aeroplane", "x2", "000012 1\n000005 1\n000012 1\n");
	expect_fail("x2", "aeroplane_x2.txt:3: id 000012 listed twice");
}

TEST(malformed)
{
	tree_make("x3");
	class_write("sofa", "x3", "000012 1\n000005\n000009 1\n000017 1\n");
	expect_fail("x3", "sofa_x3.txt:2: want `id value`, got 1 field");
	class_write("sofa", "x3", "000012 1\n000005 1 0\n");
	expect_fail("x3", "sofa_x3.txt:2: want `id value`, got 3 fields");
	class_write("sofa", "x3", "000012 1\n000005 1\n000009 2\n");
	expect_fail("x3", "sofa_x3.txt:3: value '2' is not 1, 0 or -1");
	class_write("sofa", "x3", "");
	expect_fail("x3", "sofa_x3.txt: no images listed");
	/* blank lines and CRLF endings are accepted */
	class_write("sofa", "x3", "000012 1\r\n\n000005 1\r\n000009  -1\n"
	    "000017 0\n\n");
	VocSplit s;
	char err[256];
	CHECK(voc_split_read(&s, root, "x3", err, sizeof err) == 0, "%s", err);
	voc_split_free(&s);
}

int
main(void)
{
	char cmd[128];

	th_scratch_dir(root, sizeof root, "t_voc");
	RUN(classes);
	RUN(read_ok);
	RUN(missing_file);
	RUN(ids_disagree);
	RUN(malformed);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", root);
	return check_summary();
}
