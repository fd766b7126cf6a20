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

// Shuffles that move the bytes before a dot one place right, over it, when it is followed by
// `fraction` (1…14) digits at the end of 16 bytes; byte 0 becomes zero (index 0x80).
static uint8_t drop_dot[15][16];

__attribute__((constructor)) static void fill_drop_dot(void) {
    for (int f = 1; f < 15; f++) {
        int dot = 15 - f;
        for (int i = 0; i < 16; i++) drop_dot[f][i] = i > dot ? (uint8_t)i : (i == 0 ? 0x80 : (uint8_t)(i - 1));
    }
}

// Bit i set when byte i is '0'…'9'.
SSE4 uint32_t digit_bits(__m128i bytes) {
    __m128i low = _mm_cmpgt_epi8(bytes, _mm_set1_epi8('0' - 1));
    __m128i high = _mm_cmplt_epi8(bytes, _mm_set1_epi8('9' + 1));
    return (uint32_t)_mm_movemask_epi8(_mm_and_si128(low, high));
}

// The value of the `n` (0…16) digit bytes that end just before `end` (16 bytes before it readable).
SSE4 uint64_t digits_value(__m128i bytes, unsigned n);

SSE4 uint64_t digits_before(const uint8_t *end, unsigned n) {
    return digits_value(_mm_loadu_si128((const __m128i *)(end - 16)), n);
}

// The value of the last `n` (0…16) of the digit bytes in `bytes`.
SSE4 uint64_t digits_value(__m128i bytes, unsigned n) {
    __m128i digits = _mm_sub_epi8(bytes, _mm_set1_epi8('0'));
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

// Byte classes of the 64 bytes at `p`, one bit per byte.
typedef struct {
    uint64_t digit, dot, minus, space;
} byte_classes;

SSE4 uint64_t equal_bits(__m128i a, __m128i b, __m128i c, __m128i d, char byte) {
    __m128i x = _mm_set1_epi8(byte);
    return (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, x)) |
           (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(b, x)) << 16 |
           (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(c, x)) << 32 |
           (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(d, x)) << 48;
}

SSE4 byte_classes classify(const uint8_t *p) {
    __m128i a = _mm_loadu_si128((const __m128i *)p), b = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(p + 32)), d = _mm_loadu_si128((const __m128i *)(p + 48));
    byte_classes k;
    k.digit = (uint64_t)digit_bits(a) | (uint64_t)digit_bits(b) << 16 | (uint64_t)digit_bits(c) << 32 |
              (uint64_t)digit_bits(d) << 48;
    k.dot = equal_bits(a, b, c, d, '.');
    k.minus = equal_bits(a, b, c, d, '-');
    k.space = equal_bits(a, b, c, d, ' ');
    return k;
}

// Index of the first clear bit of `bits` from `from` (< 64) on; 64 when there is none.
static inline unsigned run_end(uint64_t bits, unsigned from) {
    uint64_t rest = ~(bits >> from);
    return rest == 0 ? 64 : from + (unsigned)__builtin_ctzll(rest);
}

// A window never starts a number past this offset, so a number of up to 21 characters and the
// byte after it (the longest this kernel converts) always lie inside the window's 64 bytes.
enum { WINDOW_START_LIMIT = 40 };

// Numbers are delimited with the window's bit masks rather than by loading bytes one after the
// other, so finding where the next number starts does not wait on converting this one: the
// conversions of successive numbers overlap.
__attribute__((target("ssse3,sse4.1")))
size_t chimera_read_float_row(
    const uint8_t *p, size_t available, float *out, size_t capacity, size_t *count, int *row_ended) {
    size_t n = 0;
    size_t window = 0;  // the masks describe p[window ..< window + 64]
    unsigned at = 0;    // where reading resumes, relative to `window`
    *row_ended = 0;
    if (available < 64) {
        *count = 0;
        return 0;
    }
    byte_classes k = classify(p);
    while (n < capacity) {
        at = run_end(k.space, at);
        if (at > WINDOW_START_LIMIT) {
            if (window + at + 64 > available) break;
            window += at;
            at = 0;
            k = classify(p + window);
            continue;
        }
        const uint8_t *base = p + window;
        // -?int(.frac)? : the run of number bytes, checked against the grammar with the masks.
        unsigned end = run_end(k.digit | k.dot | k.minus, at);
        if (end > at + 21) break;  // longer than "-" + 19 digits + ".": not converted here
        unsigned negative = (unsigned)(k.minus >> at) & 1;
        unsigned digits_start = at + negative;
        unsigned integer_end = run_end(k.digit, digits_start);
        unsigned integer_length = integer_end - digits_start;
        if ((integer_length - 1 > 15) | ((integer_length > 1) & (base[digits_start] == '0'))) break;
        unsigned fraction_length = 0;
        if (integer_end != end) {
            fraction_length = end - integer_end - 1;
            if (!((k.dot >> integer_end) & 1) || fraction_length == 0 || run_end(k.digit, integer_end + 1) != end) break;
        }
        if (integer_length + fraction_length > 19) break;
        uint8_t next = base[end];
        if ((next != ',') & (next != ']')) break;

        const uint8_t *d = base + digits_start;
        uint64_t mantissa;
        if (fraction_length > 0 && integer_length + fraction_length <= 15) {
            // One 16-byte load ending at the number's end, the dot squeezed out by a shuffle.
            __m128i bytes = _mm_loadu_si128((const __m128i *)(base + end - 16));
            __m128i digits = _mm_shuffle_epi8(bytes, _mm_loadu_si128((const __m128i *)drop_dot[fraction_length]));
            mantissa = digits_value(digits, integer_length + fraction_length);
        } else {
            mantissa = digits_before(d + integer_length, integer_length);
        }
        if (fraction_length > 0 && integer_length + fraction_length > 15) {
            unsigned tail = fraction_length < 16 ? fraction_length : 16;
            uint64_t fraction = digits_before(base + end, tail);
            // Python's 17-digit repr can put up to three more fraction digits before the last sixteen.
            uint64_t lead = 0;
            for (unsigned i = 0; i < fraction_length - tail; i++) lead = lead * 10 + (uint64_t)(d[integer_length + 1 + i] - '0');
            mantissa = mantissa * powers[fraction_length] + lead * powers[16] + fraction;
        }
        // Below 2^63 the signed conversion is one instruction; the unsigned one is a sequence.
        double exact = (int64_t)mantissa >= 0 ? (double)(int64_t)mantissa : (double)mantissa;
        double product = exact * tens[22 - fraction_length];
        // Exact operands give the correctly rounded double itself; otherwise the product is within 2 ulps
        // and only a value that close to a float32 midpoint (bits 28…0 near 0x1000_0000) could round apart.
        if (mantissa > (1ULL << 53) || fraction_length > 0) {
            uint64_t bits;
            memcpy(&bits, &product, sizeof bits);
            if ((bits & 0x1FFFFFFFu) - 0x0FFFFFF8u <= 16) break;
        }
        // The sign as a bit, not a branch: half the numbers are negative, in no pattern.
        float single = (float)product;
        uint32_t single_bits;
        memcpy(&single_bits, &single, sizeof single_bits);
        single_bits |= (uint32_t)negative << 31;
        memcpy(&out[n++], &single_bits, sizeof single_bits);
        if (next == ']') {
            at = end;
            *row_ended = 1;
            break;
        }
        at = end + 1;
    }
    *count = n;
    return window + at;
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
