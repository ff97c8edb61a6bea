/*
 * record_fixture.h: test records for t_record and t_stream (not a test).
 * fixture_record fills r (zeroed or from an earlier call) with record k of
 * patch side p: every field depends on k, so records differ; record_same
 * compares two records field by field, pixels included.
 */
#ifndef RL_TESTS_RECORD_FIXTURE_H
#define RL_TESTS_RECORD_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "common/record.h"
#include "common/util.h"

static void
fixture_record(Record *r, uint64_t k, uint32_t p)
{
	char path[64];
	size_t i, n = record_pixel_bytes(p);
	int j;

	snprintf(path, sizeof path, "data/img-%llu.jpg", (unsigned long long)k);
	r->version = RECORD_VERSION;
	r->id = k * 7 + 1000000000000ULL;
	r->sample = (uint32_t)(k % 5);
	r->source = erealloc(r->source, strlen(path) + 1);
	strcpy(r->source, path);
	r->label = k % 3 == 0 ? -1 : (int64_t)(k % 10);
	r->src_w = 300 + (uint32_t)k;
	r->src_h = 200 + (uint32_t)k;
	r->patch = p;
	r->cell = p + 3;
	r->gray = (uint32_t)(k & 1);
	for (j = 0; j < RECORD_NPATCH; j++) {
		r->box[j][0] = 0.5f + (float)(j % 3) * (float)r->cell;
		r->box[j][1] = 0.25f + (float)(j / 3) * (float)r->cell;
		r->box[j][2] = r->box[j][0] + (float)p + 0.125f * (float)k;
		r->box[j][3] = r->box[j][1] + (float)p;
	}
	r->pixels = erealloc(r->pixels, n);
	for (i = 0; i < n; i++)
		r->pixels[i] = (uint8_t)(i * 31 + k * 17 + (i >> 8));
}

/* 1 if a and b hold the same record. */
static int
record_same(const Record *a, const Record *b)
{
	return a->version == b->version && a->id == b->id &&
	    a->sample == b->sample && a->label == b->label &&
	    a->src_w == b->src_w && a->src_h == b->src_h &&
	    a->patch == b->patch && a->cell == b->cell && a->gray == b->gray &&
	    memcmp(a->box, b->box, sizeof a->box) == 0 &&
	    a->source != NULL && b->source != NULL &&
	    strcmp(a->source, b->source) == 0 &&
	    a->pixels != NULL && b->pixels != NULL &&
	    memcmp(a->pixels, b->pixels, record_pixel_bytes(a->patch)) == 0;
}

#endif
