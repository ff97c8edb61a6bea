/*
 * trainlog: what a training run tells about itself. A metrics log (one
 * JSON object per line, run/metrics.jsonl), the progress line, and a PNG
 * of the loss and pretext-accuracy curves drawn by gnuplot
 * (run/curves.png).
 *
 * metrics.jsonl lines: {"step", "epoch", "lr", "loss", "acc", "pairs_s",
 * "data_wait", "grad_norm", "time"}: step = steps done, epoch = the
 * 0-based epoch of the last of them, loss and acc (0..1) over the pairs
 * of the steps since the previous line, pairs_s their throughput,
 * data_wait the share of that wall time spent waiting for input,
 * grad_norm the last step's global gradient norm, time the seconds since
 * this process started training.
 *
 * Not here: checkpoints (the run directory's other files), deciding when
 * to log.
 */
#ifndef RL_TRAINLOG_H
#define RL_TRAINLOG_H

#include <stddef.h>
#include <stdint.h>

#define TRAINLOG_METRICS "metrics.jsonl"
#define TRAINLOG_PLOT "curves.png"

typedef struct {
	uint64_t step, epoch;
	double lr, loss, acc, pairs_s, data_wait, grad_norm, time;
} TrainMetrics;

typedef struct TrainLog TrainLog;

/*
 * Open dir/metrics.jsonl for appending. resume_step 0: start it afresh
 * (an old log is replaced). Otherwise keep the lines with step <=
 * resume_step (a resumed run continues the log of the checkpoint it
 * starts from; lines written after that checkpoint are dropped) and
 * append. 0, or -1 with a message naming the file.
 */
int trainlog_open(TrainLog **out, const char *dir, uint64_t resume_step,
    char *err, size_t errlen);

/* Append one line and flush it. 0, or -1 with a message (a full disk). */
int trainlog_append(TrainLog *l, const TrainMetrics *m, char *err,
    size_t errlen);

/* Close the log (NULL is ignored). 0, or -1 with a message. */
int trainlog_close(TrainLog *l, char *err, size_t errlen);

/*
 * Read dir/metrics.jsonl into arrays (malloc'd; the caller frees *m):
 * *n lines. A line that is not a metrics object is an error naming it.
 * 0, or -1 with a message.
 */
int trainlog_read(const char *dir, TrainMetrics **m, size_t *n, char *err,
    size_t errlen);

/*
 * Draw dir/curves.png from dir/metrics.jsonl with gnuplot (pngcairo, or
 * png when cairo is missing): the loss with the learning rate, and the
 * pretext accuracy against chance (12.5%), by step. Written to a temp
 * file and renamed. 0, or -1 with a message (no gnuplot, no metrics).
 */
int trainlog_plot(const char *dir, char *err, size_t errlen);

/*
 * The tally of a run's steps: the interval since the last metrics line,
 * and the stuck-at-chance watch (the pretext accuracy over the last
 * TRAINLOG_CHANCE_WINDOW steps).
 */
#define TRAINLOG_CHANCE 0.125
#define TRAINLOG_CHANCE_WINDOW 200

typedef struct {
	int steps;                      /* in the interval */
	double loss, wall, wait, grad_norm, lr;
	long correct, pairs;
	long win[TRAINLOG_CHANCE_WINDOW];
	long win_sum, win_pairs;
	uint64_t start;                 /* the step the process started at */
	int warned;
} TrainTally;

void trainlog_tally_init(TrainTally *t, uint64_t start);

/* Count a step: step = the steps done after it; wall and wait in
 * seconds. */
void trainlog_tally_add(TrainTally *t, uint64_t step, double loss,
    long correct, long pairs, double grad_norm, double lr, double wall,
    double wait);

/*
 * Once in a run: 1 with a warning in msg when, chance_steps (> 0) steps
 * or more into the run, the accuracy over the window is still within 2.5
 * points of chance (12.5%); 0 otherwise. lr: the run's --lr, named in
 * the warning.
 */
int trainlog_chance(TrainTally *t, uint64_t step, uint64_t chance_steps,
    double lr, char *msg, size_t len);

/* The metrics of the interval so far (m->step, epoch and time given by
 * the caller are kept); then, with reset, a new interval. */
void trainlog_tally_metrics(TrainTally *t, TrainMetrics *m, int reset);

/*
 * The progress line's text for m out of total steps, with eta seconds to
 * go (< 0: unknown): "step 120/7000 ep 1 loss 2.0712 acc 14.1%
 * 312 pairs/s wait 1% ETA 1:02:03".
 */
void trainlog_format(char *buf, size_t len, const TrainMetrics *m,
    uint64_t total, double eta);

#endif
