#ifndef CHIMERA_KERNELS_H
#define CHIMERA_KERNELS_H

#include <stddef.h>

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

#endif
