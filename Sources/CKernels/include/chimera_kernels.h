#ifndef CHIMERA_KERNELS_H
#define CHIMERA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Losses of single-output linear models, as the kernel numbers them.
enum { CHIMERA_LOSS_SQUARED = 0, CHIMERA_LOSS_LOGISTIC = 1, CHIMERA_LOSS_HINGE = 2 };

/// 1 when this CPU has AVX2 and FMA (the kernels below may be called), 0 otherwise.
int chimera_blocked_kernel_available(void);

/// One pass over blocks [first_block, last_block) of rows packed eight at a time, feature-major within
/// a block (ChimeraML's BlockedRows). Adds the summed gradient (features values, then the bias) to
/// `gradient` and returns the summed loss. Lanes at or past `rows` are masked out.
double chimera_blocked_pass(
    int loss, const float *values, const float *labels, size_t rows, size_t first_block, size_t last_block,
    size_t features, const float *weights, float positive, float *gradient);

/// 1 when this CPU has SSSE3 and SSE4.1 (chimera_read_float_row may be called), 0 otherwise.
int chimera_float_rows_available(void);

/// Reads a predict body's row of plain decimals (`-?int(.frac)?`, each followed by "," or ", " or the
/// row's "]") from `p`, which must have 16 readable bytes before it. Writes up to `capacity` values as
/// Float(Double(text)) to `out`, sets `count`, and returns the offset where it stopped: at the row's
/// "]" right after a number (not consumed; `row_ended` = 1), or at the first number it leaves to the
/// caller (exponents, 20+ digits, near rounding ties, anything malformed), or where fewer than 64
/// bytes are left.
size_t chimera_read_float_row(
    const uint8_t *p, size_t available, float *out, size_t capacity, size_t *count, int *row_ended);

/// How many of `count` values (16, 32 or 64 bits, any alignment) have all of `mask`'s bits set: with an
/// exponent mask, how many are NaN or infinite.
size_t chimera_count_all_ones_u16(const void *bytes, size_t count, uint16_t mask);
size_t chimera_count_all_ones_u32(const void *bytes, size_t count, uint32_t mask);
size_t chimera_count_all_ones_u64(const void *bytes, size_t count, uint64_t mask);

#endif
