/*
 * rl-keygen: make a CURVE key pair for ZeroMQ record streams: NAME.key,
 * the secret (mode 0600), and NAME.pub, the public key and a name for
 * messages. A trainer is given its .key and its senders' .pub files; a
 * sampler its .key and the trainer's .pub (rl-record(5), "Trust").
 */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/curve.h"
#include "common/util.h"

static const char usage_line[] =
    "usage: rl-keygen [-hV] [-n name] base\n";

static const char options_text[] =
    "  base        write base.key (secret, mode 0600) and base.pub\n"
    "  -h          this help\n"
    "  -n name     the name the receiver gives this key in messages\n"
    "              (default: base's last component)\n"
    "  -V          print the version\n";

int
main(int argc, char **argv)
{
	const char *name = NULL;
	char err[512];
	int c;

	while ((c = getopt(argc, argv, "hn:V")) != -1) {
		switch (c) {
		case 'h': rl_help(usage_line, options_text);
		case 'n': name = optarg; break;
		case 'V': rl_print_version(); break;
		default: rl_usage(usage_line);
		}
	}
	if (argc - optind != 1)
		rl_usage(usage_line);
	if (curve_keygen(argv[optind], name, err, sizeof err) == -1)
		errx(RL_EXIT_FAIL, "%s", err);
	return 0;
}
