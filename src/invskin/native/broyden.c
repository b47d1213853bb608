/* Inverse linear blend skinning by Broyden's method, one row at a time, on pre-blended transform
 * grids: the loop of invskin.solvers.broyden_solver.broyden with the residual of
 * invskin.solvers.inverse_skinning.inverse_lbs (pre_blend) and the trilinear lookup of
 * invskin.nets.skinning_field.BlendedTransformGrid, fused so that a row's iterate, residual and
 * 3 x 3 inverse Jacobian stay in registers for all its steps (PyTorch runs some forty small
 * operations over all rows per step).
 *
 * Layout (float32 unless said, C-contiguous):
 *   table   (B * nz * ny * nx, 12)  per frame and grid node, the blended transform's top 3 x 4 rows
 *   lo, hi  (3,)                    bounds: node (i, j, k) at lo + (i, j, k) (hi - lo) / (n - 1)
 *   frame   (R,) int64              each row's frame
 *   target  (R, 3)                  posed points;  x0 (R, 3) starting points
 *   best_x  (R, 3), best_norm (R,), jac_inv (R, 9): outputs, as RootResult (x, residual_norm,
 *                                   inverse_jacobian); converged is best_norm < cvg.
 * Per row, as the reference: J^-1 starts as the inverse of the blended 3 x 3 at x0 (the identity
 * where it is singular); rows whose first residual is below cvg or not below dvg do not iterate;
 * each step x += -J^-1 g, then the good Broyden update of J^-1 (skipped where its denominator is
 * below sqrt(FLT_MIN)); the best iterate is kept; a row stops when its residual is below cvg, not
 * below dvg, or not finite.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>

typedef struct {
    const float *table;
    long nx, ny, nz;
    float lo[3], span[3], size[3];
} Grid;

/* The blended 3 x 4 transform of frame f at p (border values outside the bounds). */
static void lookup(const Grid *g, long f, const float p[3], float a[12]) {
    float t[3];
    long cell[3];
    for (int d = 0; d < 3; ++d) {
        float u = (p[d] - g->lo[d]) / g->span[d] * g->size[d];
        u = u > 0.0f ? u : 0.0f; /* NaN -> 0: never an index outside the grid */
        u = u < g->size[d] ? u : g->size[d];
        float c = floorf(u);
        c = c > g->size[d] - 1.0f ? g->size[d] - 1.0f : c;
        t[d] = u - c;
        cell[d] = (long)c;
    }
    const long base = ((f * g->nz + cell[2]) * g->ny + cell[1]) * g->nx + cell[0];
    for (int c = 0; c < 12; ++c) a[c] = 0.0f;
    for (int dz = 0; dz < 2; ++dz) {
        const float wz = dz ? t[2] : 1.0f - t[2];
        for (int dy = 0; dy < 2; ++dy) {
            const float wzy = wz * (dy ? t[1] : 1.0f - t[1]);
            const float *node = g->table + 12 * (base + (dz * g->ny + dy) * g->nx);
            const float w0 = wzy * (1.0f - t[0]), w1 = wzy * t[0];
            for (int c = 0; c < 12; ++c) a[c] += node[c] * w0;
            for (int c = 0; c < 12; ++c) a[c] += node[12 + c] * w1;
        }
    }
}

/* LBS(x) - target, and its norm. */
static float residual(const Grid *g, long f, const float x[3], const float target[3], float r[3]) {
    float a[12];
    lookup(g, f, x, a);
    for (int i = 0; i < 3; ++i)
        r[i] = a[4 * i] * x[0] + a[4 * i + 1] * x[1] + a[4 * i + 2] * x[2] + a[4 * i + 3]
               - target[i];
    return sqrtf(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
}

/* Inverse of the 3 x 3 part of a (rows of 4); the identity if it is singular. */
static void inverse3(const float a[12], float m[9]) {
    const float a00 = a[0], a01 = a[1], a02 = a[2], a10 = a[4], a11 = a[5], a12 = a[6];
    const float a20 = a[8], a21 = a[9], a22 = a[10];
    const float c00 = a11 * a22 - a12 * a21, c01 = a12 * a20 - a10 * a22;
    const float c02 = a10 * a21 - a11 * a20;
    const float det = a00 * c00 + a01 * c01 + a02 * c02;
    if (det == 0.0f || !isfinite(det)) {
        for (int i = 0; i < 9; ++i) m[i] = (i % 4 == 0) ? 1.0f : 0.0f;
        return;
    }
    const float s = 1.0f / det;
    m[0] = c00 * s;
    m[1] = (a02 * a21 - a01 * a22) * s;
    m[2] = (a01 * a12 - a02 * a11) * s;
    m[3] = c01 * s;
    m[4] = (a00 * a22 - a02 * a20) * s;
    m[5] = (a02 * a10 - a00 * a12) * s;
    m[6] = c02 * s;
    m[7] = (a01 * a20 - a00 * a21) * s;
    m[8] = (a00 * a11 - a01 * a10) * s;
}

void invskin_broyden_lbs(long rows, const float *table, long nx, long ny, long nz, const float *lo,
                         const float *hi, const int64_t *frame, const float *target,
                         const float *x0, int max_steps, float cvg, float dvg, float *best_x,
                         float *best_norm, float *jac_inv) {
    Grid g = {table, nx, ny, nz, {0}, {0}, {(float)(nx - 1), (float)(ny - 1), (float)(nz - 1)}};
    for (int d = 0; d < 3; ++d) {
        g.lo[d] = lo[d];
        g.span[d] = hi[d] - lo[d];
    }
    const float tiny = sqrtf(FLT_MIN);
    for (long row = 0; row < rows; ++row) {
        const long f = frame[row];
        const float *t = target + 3 * row;
        float x[3] = {x0[3 * row], x0[3 * row + 1], x0[3 * row + 2]};
        float a[12], m[9], r[3];
        lookup(&g, f, x, a);
        inverse3(a, m);
        float norm = residual(&g, f, x, t, r);
        float best = norm, bx[3] = {x[0], x[1], x[2]};
        int active = norm >= cvg && norm < dvg;
        for (int step = 0; step < max_steps && active; ++step) {
            float dx[3], rn[3], dr[3], mdr[3], v[3];
            for (int i = 0; i < 3; ++i)
                dx[i] = -(m[3 * i] * r[0] + m[3 * i + 1] * r[1] + m[3 * i + 2] * r[2]);
            for (int i = 0; i < 3; ++i) x[i] += dx[i];
            norm = residual(&g, f, x, t, rn);
            for (int i = 0; i < 3; ++i) {
                dr[i] = rn[i] - r[i];
                r[i] = rn[i];
            }
            for (int i = 0; i < 3; ++i)
                mdr[i] = m[3 * i] * dr[0] + m[3 * i + 1] * dr[1] + m[3 * i + 2] * dr[2];
            for (int j = 0; j < 3; ++j) v[j] = dx[0] * m[j] + dx[1] * m[3 + j] + dx[2] * m[6 + j];
            const float denom = v[0] * dr[0] + v[1] * dr[1] + v[2] * dr[2];
            const float scale = fabsf(denom) > tiny ? 1.0f / denom : 0.0f;
            for (int i = 0; i < 3; ++i) {
                const float u = scale * (dx[i] - mdr[i]);
                for (int j = 0; j < 3; ++j) m[3 * i + j] += u * v[j];
            }
            if (norm < best) {
                best = norm;
                bx[0] = x[0], bx[1] = x[1], bx[2] = x[2];
            }
            active = norm >= cvg && norm < dvg && isfinite(norm);
        }
        for (int i = 0; i < 3; ++i) best_x[3 * row + i] = bx[i];
        best_norm[row] = best;
        for (int i = 0; i < 9; ++i) jac_inv[9 * row + i] = m[i];
    }
}
