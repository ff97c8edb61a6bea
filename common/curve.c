/*
 * curve: CURVE key files (see curve.h). The keys come from libzmq
 * (zmq_curve_keypair, libsodium underneath); this file only reads and
 * writes them as text.
 */
#define _DEFAULT_SOURCE         /* explicit_bzero */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <zmq.h>

#include "common/curve.h"
#include "common/util.h"

int
curve_available(void)
{
	return zmq_has("curve") ? 1 : 0;
}

/* Write text to a new file (never over an existing one) of mode mode. */
static int
write_new(const char *path, const char *text, mode_t mode, char *err,
    size_t errlen)
{
	size_t len = strlen(text);
	int fd, e;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) == -1) {
		e = errno;
		close(fd);
		unlink(path);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -1;
	}
	if (close(fd) == -1) {
		e = errno;
		unlink(path);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -1;
	}
	return 0;
}

int
curve_keygen(const char *base, const char *name, char *err, size_t errlen)
{
	char pub[CURVE_Z85_LEN + 1], sec[CURVE_Z85_LEN + 1];
	char *kpath, *ppath, line[CURVE_Z85_LEN + CURVE_NAME_MAX + 4];
	const char *slash;
	int rc = -1;

	if (!curve_available()) {
		snprintf(err, errlen, "this libzmq has no CURVE security");
		return -1;
	}
	if (name == NULL)
		name = (slash = strrchr(base, '/')) != NULL ? slash + 1 : base;
	if (*name == '\0' || strlen(name) >= CURVE_NAME_MAX ||
	    strpbrk(name, " \t\r\n") != NULL) {
		snprintf(err, errlen, "key name '%s': want 1 to %d characters "
		    "without blanks", name, CURVE_NAME_MAX - 1);
		return -1;
	}
	kpath = emalloc(strlen(base) + 5);
	ppath = emalloc(strlen(base) + 5);
	sprintf(kpath, "%s.key", base);
	sprintf(ppath, "%s.pub", base);
	if (access(ppath, F_OK) == 0) {
		snprintf(err, errlen, "%s: %s", ppath, strerror(EEXIST));
		goto out;
	}
	if (zmq_curve_keypair(pub, sec) == -1) {
		snprintf(err, errlen, "zmq_curve_keypair: %s",
		    zmq_strerror(errno));
		goto out;
	}
	snprintf(line, sizeof line, "%s\n", sec);
	if (write_new(kpath, line, 0600, err, errlen) == -1)
		goto out;
	snprintf(line, sizeof line, "%s %s\n", pub, name);
	if (write_new(ppath, line, 0644, err, errlen) == -1) {
		unlink(kpath);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(sec, sizeof sec);
	explicit_bzero(line, sizeof line);
	free(kpath);
	free(ppath);
	return rc;
}

/*
 * The lines of a small text file, one at a time: a key line's key (40
 * Z85 characters, checked) and name. 1 with a key, 0 at the end, -1.
 */
typedef struct {
	FILE *fp;
	const char *path;
	int line;
} KeyLines;

static int
next_key(KeyLines *k, CurveKey *key, char *err, size_t errlen)
{
	char buf[256], *p, *q;
	size_t n;

	while (fgets(buf, sizeof buf, k->fp) != NULL) {
		k->line++;
		n = strlen(buf);
		if (n == sizeof buf - 1 && buf[n - 1] != '\n') {
			snprintf(err, errlen, "%s: line %d: too long", k->path,
			    k->line);
			return -1;
		}
		p = buf + strspn(buf, " \t\r\n");
		n = strcspn(p, " \t\r\n");
		/* '#' is also a Z85 digit: a comment is not key-sized. */
		if (*p == '\0' || (*p == '#' && n != CURVE_Z85_LEN))
			continue;
		memset(key, 0, sizeof *key);
		if (n != CURVE_Z85_LEN) {
			snprintf(err, errlen, "%s: line %d: not a CURVE key "
			    "(want %d Z85 characters)", k->path, k->line,
			    CURVE_Z85_LEN);
			return -1;
		}
		memcpy(key->z85, p, n);
		if (zmq_z85_decode(key->raw, key->z85) == NULL) {
			snprintf(err, errlen, "%s: line %d: not a CURVE key "
			    "(bad Z85 text)", k->path, k->line);
			return -1;
		}
		p += n;
		p += strspn(p, " \t");
		q = p + strcspn(p, "\r\n");
		*q = '\0';
		for (q = p; *q != '\0'; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f) {
				snprintf(err, errlen, "%s: line %d: a control "
				    "character in the name", k->path, k->line);
				return -1;
			}
		snprintf(key->name, sizeof key->name, "%s", p);
		return 1;
	}
	if (ferror(k->fp)) {
		snprintf(err, errlen, "%s: %s", k->path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
open_keys(KeyLines *k, const char *path, int secret, char *err,
    size_t errlen)
{
	struct stat sb;

	memset(k, 0, sizeof *k);
	k->path = path;
	if ((k->fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(k->fp), &sb) == -1 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		fclose(k->fp);
		return -1;
	}
	if (secret && (sb.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: a secret key readable by others "
		    "(mode %03o; chmod 600 it)", path,
		    (unsigned)(sb.st_mode & 0777));
		fclose(k->fp);
		return -1;
	}
	return 0;
}

int
curve_read_secret(const char *path, char secret[CURVE_Z85_LEN + 1],
    char public[CURVE_Z85_LEN + 1], char *err, size_t errlen)
{
	KeyLines k;
	CurveKey key;
	int rc;

	if (open_keys(&k, path, 1, err, errlen) == -1)
		return -1;
	rc = next_key(&k, &key, err, errlen);
	fclose(k.fp);
	if (rc == 0)
		snprintf(err, errlen, "%s: no key", path);
	if (rc == 1 && zmq_curve_public(public, key.z85) == -1) {
		snprintf(err, errlen, "%s: zmq_curve_public: %s", path,
		    zmq_strerror(errno));
		rc = -1;
	}
	if (rc == 1)
		memcpy(secret, key.z85, CURVE_Z85_LEN + 1);
	explicit_bzero(&key, sizeof key);
	return rc == 1 ? 0 : -1;
}

int
curve_read_public(const char *path, CurveKey **keys, size_t *n, char *err,
    size_t errlen)
{
	KeyLines k;
	CurveKey key, *v = NULL;
	size_t cap = 0;
	int rc;

	*keys = NULL;
	*n = 0;
	if (open_keys(&k, path, 0, err, errlen) == -1)
		return -1;
	while ((rc = next_key(&k, &key, err, errlen)) == 1) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			v = erealloc(v, cap * sizeof *v);
		}
		v[(*n)++] = key;
	}
	fclose(k.fp);
	if (rc == 0 && *n == 0) {
		snprintf(err, errlen, "%s: no key", path);
		rc = -1;
	}
	if (rc == -1) {
		free(v);
		*n = 0;
		return -1;
	}
	*keys = v;
	return 0;
}
