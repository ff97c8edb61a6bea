/*
 * curve: the key files of ZeroMQ's CURVE security for record streams
 * (rl-keygen(1), rl-record(5)). Keys are Z85 text, 40 characters:
 *   - a secret key file holds one line, the secret key; it must not be
 *     readable by group or others (mode 0600), and is refused otherwise;
 *   - a public key file holds one key per line, each optionally followed
 *     by white space and a name for messages; blank lines and lines
 *     starting with '#' are skipped, unless their first word is 40
 *     characters long ('#' is a Z85 digit). A receiver's list of allowed senders
 *     is such a file (the senders' .pub files concatenated).
 * Every function returns 0, or -1 with "path: line N: reason" in err.
 */
#ifndef RL_CURVE_H
#define RL_CURVE_H

#include <stddef.h>
#include <stdint.h>

#define CURVE_Z85_LEN 40
#define CURVE_NAME_MAX 64

typedef struct {
	char z85[CURVE_Z85_LEN + 1];
	uint8_t raw[32];
	char name[CURVE_NAME_MAX];      /* "" when the line gives none */
} CurveKey;

/* zmq_has("curve"): 1 if this libzmq can do CURVE, else 0. */
int curve_available(void);

/*
 * A new key pair: base.key (the secret, created 0600, never over an
 * existing file) and base.pub (the public key and name, or base's last
 * path component when name is NULL).
 */
int curve_keygen(const char *base, const char *name, char *err,
    size_t errlen);

/* The secret key of a secret key file and its public key, Z85. */
int curve_read_secret(const char *path, char secret[CURVE_Z85_LEN + 1],
    char public[CURVE_Z85_LEN + 1], char *err, size_t errlen);

/* The keys of a public key file (at least one), malloc'd into *keys. */
int curve_read_public(const char *path, CurveKey **keys, size_t *n,
    char *err, size_t errlen);

#endif
