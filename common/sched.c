/* sched: the step + linear-warmup learning-rate schedule. See sched.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sched.h"

void
sched_recipe(Sched *s, uint64_t iters_per_epoch)
{
	memset(s, 0, sizeof(*s));
	s->lr = SCHED_RECIPE_LR;
	s->gamma = SCHED_RECIPE_GAMMA;
	s->warmup_ratio = SCHED_RECIPE_WARMUP_RATIO;
	s->warmup_epochs = SCHED_RECIPE_WARMUP;
	s->epochs = SCHED_RECIPE_EPOCHS;
	s->nsteps = 2;
	s->steps[0] = 30;
	s->steps[1] = 50;
	s->iters_per_epoch = iters_per_epoch;
}

double
sched_scaled_lr(int batch)
{
	return SCHED_RECIPE_LR * batch / SCHED_RECIPE_BATCH;
}

int
sched_parse_steps(Sched *s, const char *list, char *err, size_t errlen)
{
	const char *p = list;
	int n = 0;

	if (!*list || !strcmp(list, "none")) {
		s->nsteps = 0;
		return 0;
	}
	for (;;) {
		char *end;
		long v;

		errno = 0;
		v = strtol(p, &end, 10);
		if (end == p || errno || v < 1 || v > 1000000 ||
		    (*end && *end != ',')) {
			snprintf(err, errlen, "milestones '%s': want increasing "
			    "positive epochs like 30,50", list);
			return -1;
		}
		if (n == SCHED_MAXSTEPS) {
			snprintf(err, errlen, "milestones '%s': more than %d",
			    list, SCHED_MAXSTEPS);
			return -1;
		}
		if (n > 0 && v <= s->steps[n - 1]) {
			snprintf(err, errlen, "milestones '%s': not increasing",
			    list);
			return -1;
		}
		s->steps[n++] = (int)v;
		if (!*end)
			break;
		p = end + 1;
	}
	s->nsteps = n;
	return 0;
}

int
sched_check(const Sched *s, char *err, size_t errlen)
{
	if (!(s->lr > 0) || !isfinite(s->lr)) {
		snprintf(err, errlen, "learning rate %g: must be > 0", s->lr);
		return -1;
	}
	if (!(s->gamma > 0) || !isfinite(s->gamma)) {
		snprintf(err, errlen, "lr factor %g: must be > 0", s->gamma);
		return -1;
	}
	if (!(s->warmup_ratio >= 0 && s->warmup_ratio <= 1)) {
		snprintf(err, errlen, "warmup ratio %g: must be in [0, 1]",
		    s->warmup_ratio);
		return -1;
	}
	if (s->epochs < 1 || s->warmup_epochs < 0 || s->iters_per_epoch < 1) {
		snprintf(err, errlen, "schedule: epochs %d, warmup %d, "
		    "iterations per epoch %llu", s->epochs, s->warmup_epochs,
		    (unsigned long long)s->iters_per_epoch);
		return -1;
	}
	for (int i = 0; i < s->nsteps; i++)
		if (s->steps[i] < 1 ||
		    (i > 0 && s->steps[i] <= s->steps[i - 1])) {
			snprintf(err, errlen, "milestones not increasing");
			return -1;
		}
	return 0;
}

uint64_t
sched_total(const Sched *s)
{
	return (uint64_t)s->epochs * s->iters_per_epoch;
}

uint64_t
sched_epoch(const Sched *s, uint64_t it)
{
	return it / s->iters_per_epoch;
}

double
sched_lr(const Sched *s, uint64_t it)
{
	uint64_t epoch = sched_epoch(s, it);
	uint64_t w = (uint64_t)s->warmup_epochs * s->iters_per_epoch;
	double lr = s->lr;
	int e = s->nsteps;

	// mmcv StepLrUpdaterHook.get_lr: exp = index of the first milestone
	// not yet reached
	for (int i = 0; i < s->nsteps; i++)
		if (epoch < (uint64_t)s->steps[i]) {
			e = i;
			break;
		}
	lr *= pow(s->gamma, e);
	if (it < w) {
		double k = (1 - (double)it / (double)w) * (1 - s->warmup_ratio);
		lr *= 1 - k;
	}
	return lr;
}
