/* The rational-quadratic spline of invskin.nets.pin.rational_quadratic (forward, no log-det), on
 * feature-major rows, for the CPU fast reposing path (invskin.models.fast_repose).
 *
 * Layout (all float32, C-contiguous):
 *   x    (F, R)          the free coordinates of R points
 *   raw  (F, 3K - 1, R)  per coordinate: K width, K height and K - 1 interior slope logits
 *   out  (F, R)          the moved coordinates (may not alias x or raw)
 * The spline maps [-bound, bound] onto itself; outside it is the identity. Knot j of the widths is
 *   -bound + 2 bound (m j + (1 - m K) sum_{i<j} softmax(w)_i)   (m = min_bin; the heights alike),
 * the interior knot slopes are softplus(d + unit_slope) + min_bin and both end slopes are 1.
 *
 * Points go in blocks of BLOCK: each step is a loop over the block's points, so the compiler
 * vectorises across points; a point's bin is selected with compares and blends, not gathers. exp
 * and log are written out (Cephes' single-precision polynomials, relative error ~1e-7) so those
 * loops vectorise too.
 */
#include <stdint.h>
#include <string.h>

#define BLOCK 64
#define MAX_BINS 64

static inline float exp_poly(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* log(1 + t) for t in [0, 1]. */
static inline float log1p_unit(float t) {
    float u = 1.0f + t;
    float e = u > 1.41421356237f ? 1.0f : 0.0f;
    float x = (u > 1.41421356237f ? 0.5f * u : u) - 1.0f;
    float z = x * x;
    float y = 7.0376836292e-2f;
    y = y * x - 1.1514610310e-1f;
    y = y * x + 1.1676998740e-1f;
    y = y * x - 1.2420140846e-1f;
    y = y * x + 1.4249322787e-1f;
    y = y * x - 1.6668057665e-1f;
    y = y * x + 2.0000714765e-1f;
    y = y * x - 2.4999993993e-1f;
    y = y * x + 3.3333331174e-1f;
    y = y * x * z;
    y += e * -2.12194440e-4f;
    y += -0.5f * z;
    return x + y + e * 0.693359375f;
}

static inline float softplus(float z) {
    float a = z < 0.0f ? -z : z;
    return (z > 0.0f ? z : 0.0f) + log1p_unit(exp_poly(-a));
}

/* (Steps are kept out of line: inlined into the caller, GCC 12 no longer vectorises them.) */
#define STEP static __attribute__((noinline)) void

/* Knot positions (K + 1 per point) of one block from K logits per point (rows `stride` apart). */
STEP knots(const float *logits, long stride, int bins, int n, float bound, float min_bin,
           float out[][BLOCK]) {
    float peak[BLOCK], total[BLOCK];
    for (int r = 0; r < n; ++r) peak[r] = logits[r];
    for (int j = 1; j < bins; ++j) {
        const float *row = logits + j * stride;
        for (int r = 0; r < n; ++r) peak[r] = row[r] > peak[r] ? row[r] : peak[r];
    }
    for (int r = 0; r < n; ++r) total[r] = 0.0f;
    /* out[j + 1] holds the running sum of the first j + 1 exponentials for now. */
    for (int j = 0; j < bins; ++j) {
        const float *row = logits + j * stride;
        for (int r = 0; r < n; ++r) {
            total[r] += exp_poly(row[r] - peak[r]);
            out[j + 1][r] = total[r];
        }
    }
    const float width = 2.0f * bound, spread = width * (1.0f - min_bin * bins);
    for (int r = 0; r < n; ++r) {
        total[r] = spread / total[r];
        out[0][r] = -bound;
    }
    for (int j = 1; j <= bins; ++j) {
        const float offset = -bound + width * min_bin * j;
        for (int r = 0; r < n; ++r) out[j][r] = offset + out[j][r] * total[r];
    }
}

/* One step of the bin search: where knot j lies below the point, bin j becomes its bin. */
STEP select_bin(int n, const float *restrict xj, const float *restrict yj,
                const float *restrict xn, const float *restrict yn, const float *restrict dj0,
                const float *restrict dj1, float last, const float *restrict v,
                float *restrict x0, float *restrict y0, float *restrict x1, float *restrict y1,
                float *restrict d0, float *restrict d1, float *restrict end0,
                float *restrict end1) {
    for (int r = 0; r < n; ++r) { /* every load unconditional, so the blends vectorise */
        const float xa = xj[r], ya = yj[r], xb = xn[r], yb = yn[r], da = dj0[r], db = dj1[r];
        const _Bool below = xa < v[r];
        x0[r] = below ? xa : x0[r];
        y0[r] = below ? ya : y0[r];
        d0[r] = below ? da : d0[r];
        end0[r] = below ? 0.0f : end0[r];
        x1[r] = below ? xb : x1[r];
        y1[r] = below ? yb : y1[r];
        d1[r] = below ? db : d1[r];
        end1[r] = below ? last : end1[r];
    }
}

int invskin_rq_spline(long rows, int nfree, int bins, const float *x, const float *raw, float *out,
                      float bound, float min_bin, float unit_slope) {
    if (bins < 2 || bins > MAX_BINS) return 1;
    const long params = 3L * bins - 1;
    for (int f = 0; f < nfree; ++f) {
        const float *xf = x + f * rows;
        const float *rf = raw + f * params * rows;
        float *of = out + f * rows;
        for (long start = 0; start < rows; start += BLOCK) {
            const int n = rows - start < BLOCK ? (int)(rows - start) : BLOCK;
            const float *w = rf + start, *h = rf + bins * rows + start;
            const float *d = rf + 2L * bins * rows + start;
            float xs[MAX_BINS + 1][BLOCK], ys[MAX_BINS + 1][BLOCK];
            knots(w, rows, bins, n, bound, min_bin, xs);
            knots(h, rows, bins, n, bound, min_bin, ys);
            float v[BLOCK], x0[BLOCK], y0[BLOCK], x1[BLOCK], y1[BLOCK];
            float d0[BLOCK], d1[BLOCK], end0[BLOCK], end1[BLOCK];
            for (int r = 0; r < n; ++r) {
                float value = xf[start + r];
                v[r] = value < -bound ? -bound : (value > bound ? bound : value);
                x0[r] = xs[0][r];
                y0[r] = ys[0][r];
                x1[r] = xs[1][r];
                y1[r] = ys[1][r];
                d0[r] = 0.0f;
                end0[r] = 1.0f;
                d1[r] = d[r];
                end1[r] = 0.0f; /* bins >= 2: knot 1 is interior */
            }
            /* The bin is the number of interior knots below the point (knots increase). */
            for (int j = 1; j < bins; ++j) {
                const float *dj0 = d + (long)(j - 1) * rows;
                const float *dj1 = d + (long)(j < bins - 1 ? j : bins - 2) * rows;
                const float last = j + 1 == bins ? 1.0f : 0.0f;
                select_bin(n, xs[j], ys[j], xs[j + 1], ys[j + 1], dj0, dj1, last, v, x0, y0, x1, y1,
                           d0, d1, end0, end1);
            }
            for (int r = 0; r < n; ++r) {
                const float s0 = end0[r] > 0.0f ? 1.0f : softplus(d0[r] + unit_slope) + min_bin;
                const float s1 = end1[r] > 0.0f ? 1.0f : softplus(d1[r] + unit_slope) + min_bin;
                const float wb = x1[r] - x0[r], hb = y1[r] - y0[r];
                const float s = hb / wb, xi = (v[r] - x0[r]) / wb, both = xi * (1.0f - xi);
                const float moved =
                    y0[r] + hb * (s * xi * xi + s0 * both) / (s + (s0 + s1 - 2.0f * s) * both);
                const float value = xf[start + r];
                of[start + r] = (value > -bound && value < bound) ? moved : value;
            }
        }
    }
    return 0;
}
