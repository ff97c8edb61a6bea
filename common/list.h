/*
 * list: list files, one image a line: `path [label ...]`.
 *
 * The labels are the trailing whitespace-separated integers of a line;
 * everything before them (trimmed) is the path, so paths may hold spaces.
 * This is ImageNet's meta/train.txt form (`n01440764/x.JPEG 0`) and also a
 * plain `find` listing. Blank lines and lines starting with '#' are
 * skipped. A relative path is taken relative to `root` when one is given;
 * list_read_file defaults that root to the list file's own directory, so a
 * list reads the same from any working directory. Writing lists is left to
 * the tools that make them (rl-import, rl-voc).
 */
#ifndef RL_LIST_H
#define RL_LIST_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
	char *path;       /* owned by the List */
	int nlabel;
	long *label;      /* nlabel values, owned by the List */
	size_t line;      /* 1-based line number in the source */
} ListItem;

typedef struct {
	ListItem *item;
	size_t n, cap;
} List;

/*
 * Append the lines of fp (named `name` in messages) to l, which must be
 * zeroed or hold earlier items. Returns 0, or -1 with a message
 * "name:line: reason" in err: a read error, a NUL byte or another
 * control byte (C0 but tab, DEL) in a line, a label beyond a long. The
 * message names the line, never echoes it; so no path read holds a byte
 * that drives a terminal. Items before the bad line stay in l.
 */
int list_read(List *l, FILE *fp, const char *name, const char *root,
    char *err, size_t errlen);
/*
 * Read the list file `name` into l as list_read does; "-" or NULL is stdin
 * ("<stdin>" in messages). Relative paths are taken under root when it is
 * given, else under the directory of name (for stdin, the current
 * directory); a root of "." leaves them as written. Returns 0, or -1 with
 * "name: reason" in err (the file cannot be opened, or list_read's errors).
 */
int list_read_file(List *l, const char *name, const char *root, char *err,
    size_t errlen);
/* Append one item; path and labels are copied. */
void list_add(List *l, const char *path, const long *label, int nlabel);
void list_free(List *l);

#endif
