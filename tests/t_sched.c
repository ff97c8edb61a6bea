/* t_sched: the learning-rate schedule against values computed by hand. */
#include <string.h>

#include "common/sched.h"
#include "tests/check.h"

TEST(recipe)
{
	Sched s;
	char err[128];

	sched_recipe(&s, 10);   /* 10 iterations per epoch: W = 50 */
	CHECK(sched_check(&s, err, sizeof(err)) == 0, "%s", err);
	CHECK(sched_total(&s) == 700, "total %llu",
	    (unsigned long long)sched_total(&s));
	/* warmup: 0.2 * (0.1 + 0.9 * it / 50) */
	CHECK_NEAR(sched_lr(&s, 0), 0.02, 1e-15, 0);
	CHECK_NEAR(sched_lr(&s, 1), 0.0236, 1e-15, 0);
	CHECK_NEAR(sched_lr(&s, 25), 0.11, 1e-15, 0);
	CHECK_NEAR(sched_lr(&s, 49), 0.1964, 1e-15, 0);
	/* plateau, then x0.1 at epoch 30 (it 300) and at epoch 50 (it 500) */
	CHECK(sched_lr(&s, 50) == 0.2, "it 50: %g", sched_lr(&s, 50));
	CHECK(sched_lr(&s, 299) == 0.2, "it 299");
	CHECK_NEAR(sched_lr(&s, 300), 0.02, 1e-17, 0);
	CHECK_NEAR(sched_lr(&s, 499), 0.02, 1e-17, 0);
	CHECK_NEAR(sched_lr(&s, 500), 0.002, 1e-18, 0);
	CHECK_NEAR(sched_lr(&s, 699), 0.002, 1e-18, 0);
	CHECK(sched_epoch(&s, 299) == 29 && sched_epoch(&s, 300) == 30,
	    "epochs");
}

TEST(mmselfsup_imagenet)
{
	Sched s;

	/* relloc-protocols(7), OPTIMISATION: 2503 iterations per epoch, W = 12515 */
	sched_recipe(&s, 2503);
	CHECK_NEAR(sched_lr(&s, 12514), 0.2 * (0.1 + 0.9 * 12514 / 12515.0),
	    1e-15, 0);
	CHECK(sched_lr(&s, 12515) == 0.2, "end of warmup");
	CHECK(sched_total(&s) == 175210, "total");
}

TEST(scaled)
{
	CHECK_NEAR(sched_scaled_lr(512), 0.2, 1e-15, 0);
	CHECK_NEAR(sched_scaled_lr(16), 0.00625, 1e-15, 0);
	CHECK_NEAR(sched_scaled_lr(64), 0.025, 1e-15, 0);
}

TEST(no_warmup_custom)
{
	Sched s;
	char err[128];

	sched_recipe(&s, 4);
	s.warmup_epochs = 0;
	s.lr = 1;
	s.gamma = 0.5;
	s.epochs = 6;
	CHECK(sched_parse_steps(&s, "1,3,5", err, sizeof(err)) == 0, "%s",
	    err);
	CHECK(s.nsteps == 3, "nsteps %d", s.nsteps);
	CHECK(sched_lr(&s, 0) == 1 && sched_lr(&s, 3) == 1, "epoch 0");
	CHECK(sched_lr(&s, 4) == 0.5 && sched_lr(&s, 11) == 0.5, "epoch 1-2");
	CHECK(sched_lr(&s, 12) == 0.25, "epoch 3");
	CHECK(sched_lr(&s, 23) == 0.125, "epoch 5");
	CHECK(sched_parse_steps(&s, "none", err, sizeof(err)) == 0 &&
	    s.nsteps == 0, "none");
	CHECK(sched_lr(&s, 23) == 1, "no milestones");
}

TEST(parse_refuses)
{
	Sched s;
	char err[128];

	sched_recipe(&s, 1);
	CHECK(sched_parse_steps(&s, "50,30", err, sizeof(err)) < 0 &&
	    strstr(err, "increasing"), "decreasing");
	CHECK(sched_parse_steps(&s, "30,x", err, sizeof(err)) < 0, "x");
	CHECK(sched_parse_steps(&s, "0", err, sizeof(err)) < 0, "0");
	CHECK(sched_parse_steps(&s, "30,", err, sizeof(err)) < 0, "trailing");
	s.lr = 0;
	CHECK(sched_check(&s, err, sizeof(err)) < 0, "lr 0");
}

int
main(void)
{
	RUN(recipe);
	RUN(mmselfsup_imagenet);
	RUN(scaled);
	RUN(no_warmup_custom);
	RUN(parse_refuses);
	return check_summary();
}
