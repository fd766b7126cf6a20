// Finiteness checks of float frames (every pushed gradient and every weight broadcast is checked) at
// memory speed. Written in C because Swift's loop kept range checks that stopped LLVM from vectorising
// it: a scalar scan of a 1.1 M-float push cost more than summing it.
#include "chimera_kernels.h"
#include <string.h>

// Counts in blocks with 32-bit lanes (the widest vectors), loads through memcpy so unaligned frames work.
#define COUNT_ALL_ONES(NAME, T)                                                                    \
    size_t NAME(const void *bytes, size_t count, T mask) {                                         \
        const unsigned char *p = (const unsigned char *)bytes;                                     \
        size_t hits = 0;                                                                           \
        for (size_t start = 0; start < count; start += 65536) {                                    \
            size_t end = count - start < 65536 ? count : start + 65536;                            \
            uint32_t block = 0;                                                                    \
            for (size_t i = start; i < end; i++) {                                                 \
                T v;                                                                               \
                memcpy(&v, p + i * sizeof(T), sizeof(T));                                          \
                block += (v & mask) == mask;                                                       \
            }                                                                                      \
            hits += block;                                                                         \
        }                                                                                          \
        return hits;                                                                               \
    }

COUNT_ALL_ONES(chimera_count_all_ones_u16, uint16_t)
COUNT_ALL_ONES(chimera_count_all_ones_u32, uint32_t)
COUNT_ALL_ONES(chimera_count_all_ones_u64, uint64_t)
