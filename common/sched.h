/*
 * sched: the learning-rate schedule of MMSelfSup's Relative-Location
 * recipe (relloc-protocols(7), OPTIMISATION): mmcv's `step` policy by epoch with a linear
 * warmup applied per iteration.
 *
 *   regular(it) = lr * gamma^(number of milestones m with epoch(it) >= m),
 *                 epoch(it) = it / iters_per_epoch (0-based, integer);
 *   lr(it)      = regular(it) * (1 - k),
 *                 k = (1 - it / W) * (1 - warmup_ratio)   for it < W,
 *                 k = 0                                   otherwise,
 * with W = warmup_epochs * iters_per_epoch (mmcv 1.x
 * LrUpdaterHook.get_warmup_lr, `linear`, warmup_by_epoch=True), so
 * lr(it) = lr * (0.1 + 0.9 * it / W) during warmup when ratio is 0.1.
 *
 * Also the linear scaling rule that carries the recipe's lr (0.2 at 512
 * images per step) to another batch size.
 *
 * Not here: the optimiser itself (optim.h), per-group multipliers (the
 * recipe uses the same lr for every group).
 */
#ifndef RL_SCHED_H
#define RL_SCHED_H

#include <stddef.h>
#include <stdint.h>

#define SCHED_MAXSTEPS 16

/* The recipe's values (relloc-protocols(7), OPTIMISATION). */
#define SCHED_RECIPE_LR 0.2
#define SCHED_RECIPE_BATCH 512
#define SCHED_RECIPE_EPOCHS 70
#define SCHED_RECIPE_WARMUP 5
#define SCHED_RECIPE_WARMUP_RATIO 0.1
#define SCHED_RECIPE_GAMMA 0.1

typedef struct {
	double lr;              /* the base (peak) learning rate */
	double gamma;           /* factor at each milestone */
	double warmup_ratio;    /* lr multiplier at iteration 0 */
	int warmup_epochs;      /* 0: no warmup */
	int epochs;             /* length of the run */
	int nsteps;             /* milestones, epochs, increasing */
	int steps[SCHED_MAXSTEPS];
	uint64_t iters_per_epoch;   /* >= 1 */
} Sched;

/* s = the recipe (lr 0.2, gamma 0.1, warmup 5 epochs from 0.1x, steps
 * 30 and 50, 70 epochs), with iters_per_epoch given. */
void sched_recipe(Sched *s, uint64_t iters_per_epoch);

/* The recipe's lr scaled linearly to `batch` images per step:
 * SCHED_RECIPE_LR * batch / SCHED_RECIPE_BATCH. */
double sched_scaled_lr(int batch);

/*
 * Parse a milestone list "30,50" (increasing positive integers, at most
 * SCHED_MAXSTEPS; "" or "none" for none) into s->steps. 0, or -1 with a
 * message.
 */
int sched_parse_steps(Sched *s, const char *list, char *err, size_t errlen);

/* 0 if s is usable (lr > 0 and finite, gamma > 0, 0 <= warmup_ratio <= 1,
 * epochs >= 1, iters_per_epoch >= 1, milestones increasing), else -1 with
 * a message. */
int sched_check(const Sched *s, char *err, size_t errlen);

/* Iterations in the whole run: epochs * iters_per_epoch. */
uint64_t sched_total(const Sched *s);

/* The epoch (0-based) iteration it belongs to. */
uint64_t sched_epoch(const Sched *s, uint64_t it);

/* The learning rate at iteration it (0-based), as above. */
double sched_lr(const Sched *s, uint64_t it);

#endif
