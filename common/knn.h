/*
 * knn: weighted k-nearest-neighbour classification of features, the kNN
 * benchmark of DINO's eval_knn.py as MMSelfSup 0.x uses it
 * (mmselfsup/models/utils/knn_classifier.py; relloc-protocols(7), KNN):
 * L2-normalise bank and queries, cosine similarity, the k most similar
 * bank rows, each voting exp(sim / T) for its label, argmax.
 *
 * The search is blocked: a (chunk_q x D) block of queries times a
 * (chunk_b x D) block of the bank with blas_gemm, merged into a running
 * top-kmax per query, so scratch memory is chunk_q * chunk_b floats plus
 * chunk_q * kmax (similarity, index) pairs, whatever the bank's size. The
 * bank and the queries themselves stay in the caller's memory.
 *
 * Order: neighbours are sorted by their computed similarity descending,
 * and among equal computed similarities the lower bank index comes first
 * (a stable sort). A similarity is a float dot product from cblas_sgemm,
 * whose last bits depend on the BLAS kernel (so on the CPU) and on the
 * block's shape: two chunkings, or two CPUs, can give the same pair
 * values that differ by the rounding (at most about dim * FLT_EPSILON / 2
 * for unit vectors), and so put neighbours whose similarities lie within
 * it in either order, or keep either of two such rows at the k-th place.
 * Where every product and partial sum is exact in float (small dyadic
 * values), the result is the same for any chunking. Classes are ranked by score descending, the lower class
 * index first among equal scores; a class without votes never counts as
 * a hit (DINO's torch.sort leaves their order unspecified).
 *
 * Does not read files, build montages or compute accuracies.
 */
#ifndef RL_KNN_H
#define RL_KNN_H

#include <stddef.h>
#include <stdint.h>

#define KNN_T 0.07          /* DINO's temperature */
#define KNN_EPS 1e-12       /* torch.nn.functional.normalize's eps */
#define KNN_CHUNK_Q 1024    /* default query rows per block */
#define KNN_CHUNK_B 4096    /* default bank rows per block */

/*
 * Scale each of the n rows of x (n x dim) in place to unit L2 norm:
 * x / max(||x||, KNN_EPS), as F.normalize(x, dim=1).
 */
void knn_normalize(float *x, size_t n, size_t dim);

/*
 * For each of the nq rows of query (nq x dim), the kmax rows of bank
 * (nb x dim) with the largest dot product: sim[q*kmax + j] and
 * idx[q*kmax + j] for j = 0..kmax-1, in the order stated above. Both
 * outputs are caller-allocated (nq * kmax). chunk_q, chunk_b are the
 * block sizes (0 for the defaults). Normalise both sides first for the
 * cosine. Requires 1 <= kmax <= nb. When done is not NULL it is called
 * after each block of queries with ctx and the number of queries done.
 */
void knn_search(float *sim, int64_t *idx, const float *query, size_t nq,
    const float *bank, size_t nb, size_t dim, int kmax, size_t chunk_q,
    size_t chunk_b, void (*done)(void *ctx, size_t nq_done), void *ctx);

/*
 * The class scores of one query from its first k neighbours (sim, idx as
 * knn_search wrote them): score[c] = sum of exp(sim_j / t) over the
 * neighbours j whose bank_label is c, accumulated in double. score has
 * nclass entries and is overwritten; bank labels must be < nclass.
 */
void knn_vote(double *score, const float *sim, const int64_t *idx, int k,
    const int *bank_label, int nclass, double t);

/*
 * Top-1 and top-5 hits of the nq queries (neighbours sim, idx from
 * knn_search with kmax >= k) when voting with k neighbours at temperature
 * t: a query is a top-n hit when its label has a vote and ranks below
 * min(n, k) by metric_rank on the scores rounded to float, as DINO ranks
 * them (ties to the lower class). *top1 and *top5
 * are overwritten with counts.
 */
void knn_hits(size_t *top1, size_t *top5, const float *sim,
    const int64_t *idx, int kmax, size_t nq, int k, const int *bank_label,
    const int *query_label, int nclass, double t);

#endif
