// The BlockedRows pass with AVX2 + FMA intrinsics, chosen at run time. The Swift SIMD8 version runs at
// about half this speed on SSE2 (the baseline Swift targets), and compiling Swift for AVX2 would make
// the binary crash on older CPUs; here only this file uses AVX2, behind a CPU check.
#include "chimera_kernels.h"
#include <immintrin.h>
#include <stdlib.h>

int chimera_blocked_kernel_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

// e^x for x <= 0: Cody-Waite reduction and a degree-6 polynomial (the Swift kernel's constants).
AVX2 __m256 exp_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), _mm256_set1_ps(12582912.0f));
    __m256 n = _mm256_sub_ps(shifted, _mm256_set1_ps(12582912.0f));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.1219444e-4f), r);
    __m256 p = _mm256_set1_ps(1.98756915e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.39819995e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.16657959e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.66666655e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.00000012e-1f));
    __m256 poly = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(exponent, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(poly, _mm256_castsi256_ps(scale));
}

// log(1 + e) for e in [0, 1]: halved above sqrt(2) - 1 (adding ln 2), then Cephes' logf polynomial.
AVX2 __m256 log1p_unit(__m256 e) {
    __m256 high = _mm256_cmp_ps(e, _mm256_set1_ps(0.41421356f), _CMP_GT_OQ);
    __m256 f = _mm256_blendv_ps(e, _mm256_fmsub_ps(e, _mm256_set1_ps(0.5f), _mm256_set1_ps(0.5f)), high);
    __m256 z = _mm256_mul_ps(f, f);
    __m256 p = _mm256_set1_ps(7.0376836292e-2f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.1514610310e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.1676998740e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.2420140846e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.4249322787e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.6668057665e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.0000714765e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-2.4999993993e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(3.3333331174e-1f));
    __m256 tail = _mm256_fmsub_ps(_mm256_mul_ps(p, f), z, _mm256_mul_ps(_mm256_set1_ps(0.5f), z));
    return _mm256_add_ps(_mm256_add_ps(f, tail), _mm256_and_ps(high, _mm256_set1_ps(0.69314718f)));
}

AVX2 float lane_sum(__m256 v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
}

// Derivative and loss of eight rows; the loss is a compile-time constant in each caller's loop.
AVX2 void derivative_and_loss(int loss, __m256 score, __m256 label, __m256 positive, __m256 *derivative, __m256 *value) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    if (loss == CHIMERA_LOSS_SQUARED) {
        __m256 residual = _mm256_sub_ps(score, label);
        *derivative = residual;
        *value = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_mul_ps(residual, residual));
    } else if (loss == CHIMERA_LOSS_LOGISTIC) {
        __m256 target = _mm256_and_ps(_mm256_cmp_ps(label, positive, _CMP_EQ_OQ), one);
        __m256 negative = _mm256_cmp_ps(score, zero, _CMP_LT_OQ);
        __m256 e = exp_nonpositive(_mm256_or_ps(score, _mm256_set1_ps(-0.0f)));  // e^(-|s|)
        __m256 p = _mm256_div_ps(one, _mm256_add_ps(one, e));
        __m256 sigmoid = _mm256_blendv_ps(p, _mm256_mul_ps(e, p), negative);
        *derivative = _mm256_sub_ps(sigmoid, target);
        __m256 softplus = _mm256_add_ps(_mm256_max_ps(score, zero), log1p_unit(e));
        *value = _mm256_fnmadd_ps(target, score, softplus);
    } else {
        __m256 target = _mm256_blendv_ps(_mm256_set1_ps(-1.0f), one, _mm256_cmp_ps(label, positive, _CMP_EQ_OQ));
        __m256 margin = _mm256_mul_ps(target, score);
        __m256 active = _mm256_cmp_ps(margin, one, _CMP_LT_OQ);
        *derivative = _mm256_and_ps(active, _mm256_sub_ps(zero, target));
        *value = _mm256_and_ps(active, _mm256_sub_ps(one, margin));
    }
}

AVX2 double pass(
    int loss, const float *values, const float *labels, size_t rows, size_t first, size_t last, size_t d,
    const float *weights, float positive_label, float *gradient, __m256 *accumulators) {
    for (size_t j = 0; j < d; j++) accumulators[j] = _mm256_setzero_ps();
    const __m256 bias = _mm256_set1_ps(weights[d]), positive = _mm256_set1_ps(positive_label);
    __m256 bias_gradient = _mm256_setzero_ps(), losses = _mm256_setzero_ps();
    double total = 0;
    for (size_t block = first; block < last; block++) {
        const float *x = values + block * d * 8;
        __m256 score = bias;
        for (size_t j = 0; j < d; j++) score = _mm256_fmadd_ps(_mm256_set1_ps(weights[j]), _mm256_loadu_ps(x + j * 8), score);
        __m256 derivative, value;
        derivative_and_loss(loss, score, _mm256_loadu_ps(labels + block * 8), positive, &derivative, &value);
        if (rows - block * 8 < 8) {
            // The padded lanes of the last block contribute nothing.
            __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(rows - block * 8)), lane));
            derivative = _mm256_and_ps(derivative, live);
            value = _mm256_and_ps(value, live);
        }
        for (size_t j = 0; j < d; j++) accumulators[j] = _mm256_fmadd_ps(derivative, _mm256_loadu_ps(x + j * 8), accumulators[j]);
        bias_gradient = _mm256_add_ps(bias_gradient, derivative);
        losses = _mm256_add_ps(losses, value);
        if ((block & 63) == 63) {  // into a double every 64 blocks, for precision
            total += lane_sum(losses);
            losses = _mm256_setzero_ps();
        }
    }
    total += lane_sum(losses);
    for (size_t j = 0; j < d; j++) gradient[j] += lane_sum(accumulators[j]);
    gradient[d] += lane_sum(bias_gradient);
    return total;
}

__attribute__((target("avx2,fma")))
double chimera_blocked_pass(
    int loss, const float *values, const float *labels, size_t rows, size_t first_block, size_t last_block,
    size_t features, const float *weights, float positive, float *gradient) {
    __m256 *accumulators = aligned_alloc(32, (features + 1) * sizeof(__m256));
    if (accumulators == NULL) abort();
    double total;
    switch (loss) {
    case CHIMERA_LOSS_SQUARED:
        total = pass(CHIMERA_LOSS_SQUARED, values, labels, rows, first_block, last_block, features, weights, positive, gradient, accumulators);
        break;
    case CHIMERA_LOSS_LOGISTIC:
        total = pass(CHIMERA_LOSS_LOGISTIC, values, labels, rows, first_block, last_block, features, weights, positive, gradient, accumulators);
        break;
    default:
        total = pass(CHIMERA_LOSS_HINGE, values, labels, rows, first_block, last_block, features, weights, positive, gradient, accumulators);
        break;
    }
    free(accumulators);
    return total;
}
