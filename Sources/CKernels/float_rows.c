// The predict body's rows of plain decimals read with SSSE3/SSE4.1 (x86-64-v2), chosen at run time:
// digits are found with byte compares and summed with multiply-adds, 16 at a time, instead of one
// chain of loads and shifts per number. Whatever is not a plain decimal followed by "," or "]" is
// left to the caller's exact reader (JSONReader), which also owns every error message.
#include "chimera_kernels.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

int chimera_float_rows_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
}

#define SSE4 __attribute__((target("ssse3,sse4.1"), always_inline)) static inline

// 10^-22 … 10^22 (index 22 + power); the compiler rounds each literal correctly.
static const double tens[45] = {
    1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8,
    1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const uint64_t powers[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL};

// Bit i set when byte i is '0'…'9'.
SSE4 uint32_t digit_bits(__m128i bytes) {
    __m128i low = _mm_cmpgt_epi8(bytes, _mm_set1_epi8('0' - 1));
    __m128i high = _mm_cmplt_epi8(bytes, _mm_set1_epi8('9' + 1));
    return (uint32_t)_mm_movemask_epi8(_mm_and_si128(low, high));
}

// The value of the `n` (0…16) digit bytes that end just before `end` (16 bytes before it readable).
SSE4 uint64_t digits_before(const uint8_t *end, unsigned n) {
    __m128i digits = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(end - 16)), _mm_set1_epi8('0'));
    __m128i index = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m128i keep = _mm_cmpgt_epi8(index, _mm_set1_epi8((char)(15 - (int)n)));
    digits = _mm_and_si128(digits, keep);
    // Pairs, quadruples, octets: each step multiplies neighbours into place.
    __m128i pairs = _mm_maddubs_epi16(digits, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1));
    __m128i quads = _mm_madd_epi16(pairs, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
    __m128i packed = _mm_packus_epi32(quads, quads);
    __m128i octets = _mm_madd_epi16(packed, _mm_setr_epi16(10000, 1, 10000, 1, 10000, 1, 10000, 1));
    uint64_t high = (uint32_t)_mm_cvtsi128_si32(octets);
    uint64_t low = (uint32_t)_mm_extract_epi32(octets, 1);
    return high * 100000000ULL + low;
}

// `-?int(.frac)?` at q (at least 48 bytes readable, 16 before): its float32 (as Float(Double(text)))
// and length, or 0 for anything else — exponents, leading zeros, 20+ digits, and values too close
// to a float32 rounding boundary to trust one multiply.
SSE4 int read_number(const uint8_t *q, float *value, unsigned *length) {
    unsigned negative = q[0] == '-';
    const uint8_t *d = q + negative;
    uint32_t digits = digit_bits(_mm_loadu_si128((const __m128i *)d)) |
                      digit_bits(_mm_loadu_si128((const __m128i *)(d + 16))) << 16;
    if (digits == 0xFFFFFFFFu) return 0;
    unsigned integer_length = (unsigned)__builtin_ctz(~digits);
    // One branch for the rare shapes (no digits, 17+ integer digits, a leading zero): lengths vary
    // from number to number, and a branch per condition would mispredict on them.
    if ((integer_length - 1 > 15) | ((integer_length > 1) & (d[0] == '0'))) return 0;
    unsigned fraction_length = 0;
    unsigned end = integer_length;
    if (d[integer_length] == '.') {
        fraction_length = (unsigned)__builtin_ctz(~(digits >> (integer_length + 1)));
        if (fraction_length == 0) return 0;
        end = integer_length + 1 + fraction_length;
    }
    if ((integer_length + fraction_length > 19) | ((d[end] | 0x20) == 'e')) return 0;
    uint64_t mantissa = digits_before(d + integer_length, integer_length);
    if (fraction_length > 0) {
        unsigned tail = fraction_length < 16 ? fraction_length : 16;
        uint64_t fraction = digits_before(d + end, tail);
        // Python's 17-digit repr can put up to three more fraction digits before the last sixteen.
        uint64_t lead = 0;
        for (unsigned i = 0; i < fraction_length - tail; i++) lead = lead * 10 + (uint64_t)(d[integer_length + 1 + i] - '0');
        mantissa = mantissa * powers[fraction_length] + lead * powers[16] + fraction;
    }
    double product = (double)mantissa * tens[22 - fraction_length];
    // Exact operands give the correctly rounded double itself; otherwise the product is within 2 ulps
    // and only a value that close to a float32 midpoint (bits 28…0 near 0x1000_0000) could round apart.
    if (mantissa > (1ULL << 53) || fraction_length > 0) {
        uint64_t bits;
        memcpy(&bits, &product, sizeof bits);
        if ((bits & 0x1FFFFFFFu) - 0x0FFFFFF8u <= 16) return 0;
    }
    float single = (float)product;
    *value = negative ? -single : single;
    *length = negative + end;
    return 1;
}

__attribute__((target("ssse3,sse4.1")))
size_t chimera_read_float_row(
    const uint8_t *p, size_t available, float *out, size_t capacity, size_t *count, int *row_ended) {
    size_t position = 0;
    size_t n = 0;
    *row_ended = 0;
    while (n < capacity) {
        while (position < available && p[position] == ' ') position++;
        if (position + 64 > available) break;
        float value;
        unsigned length;
        if (!read_number(p + position, &value, &length)) break;
        uint8_t next = p[position + length];
        if (next == ',') {
            out[n++] = value;
            position += length + 1;
        } else if (next == ']') {
            out[n++] = value;
            position += length;
            *row_ended = 1;
            break;
        } else {
            break;
        }
    }
    *count = n;
    return position;
}

#else

int chimera_float_rows_available(void) { return 0; }

size_t chimera_read_float_row(
    const uint8_t *p, size_t available, float *out, size_t capacity, size_t *count, int *row_ended) {
    (void)p, (void)available, (void)out, (void)capacity;
    *count = 0;
    *row_ended = 0;
    return 0;
}

#endif
