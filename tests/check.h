/*
 * check.h: the unit-test harness shared by tests/t_*.c (mtest style).
 *
 * CHECK(cond, ...) records a failure with file:line and a message, and
 * carries on; TEST(name) { ... } defines a case that RUN(name) runs and
 * reports as one `ok name` or `FAIL name` line. main ends with
 * `return check_summary();`, which prints "N passed, N failed" for the
 * file and returns non-zero when any case failed.
 *
 * Deliberately not a framework: no fixtures, no registration, no forking.
 */
#ifndef RL_TESTS_CHECK_H
#define RL_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_case_failed, check_npass, check_nfail;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		check_case_failed = 1; \
	} \
} while (0)

/* CHECK_NEAR: |a - b| <= atol + rtol * |b|. */
#define CHECK_NEAR(a, b, atol, rtol) do { \
	double check_a_ = (a), check_b_ = (b); \
	CHECK(fabs(check_a_ - check_b_) <= (atol) + (rtol) * fabs(check_b_), \
	    "%s = %.9g, %s = %.9g", #a, check_a_, #b, check_b_); \
} while (0)

#define TEST(name) static void test_##name(void)

#define RUN(name) do { \
	check_case_failed = 0; \
	test_##name(); \
	printf("%s %s\n", check_case_failed ? "FAIL" : "ok", #name); \
	fflush(stdout); \
	if (check_case_failed) check_nfail++; else check_npass++; \
} while (0)

static int
check_summary(void)
{
	printf("%d passed, %d failed\n", check_npass, check_nfail);
	return check_nfail != 0;
}

#endif
