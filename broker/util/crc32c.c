/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Hardware path: the SSE4.2 crc32 instruction has a latency of three cycles
 * but a throughput of one per cycle, so a single dependency chain runs at a
 * third of the possible rate. Long inputs are therefore split into three
 * adjacent blocks whose CRCs run as three independent chains and are then
 * combined: for the raw (unconditioned) CRC H, appending n bytes M to a
 * state c gives H(c, M) = Z_n(c) ^ H(0, M), where Z_n ("advance over n zero
 * bytes") is linear over GF(2)^32 and is applied with four 256-entry tables.
 *
 * Software path: slicing-by-8 tables, for CPUs without SSE4.2. */
#include "crc32c.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

/* Block sizes of the three-way interleave; each has its own Z_n tables. */
#define CRC32C_LONG  4096
#define CRC32C_SHORT 256

static uint32_t crc32c_table[8][256];
static uint32_t crc32c_long_shift[4][256];
static uint32_t crc32c_short_shift[4][256];
static bool crc32c_have_sse42;

/* Advances a raw CRC over n zero bytes, a byte at a time (init only). */
static uint32_t crc32c_zeros_slow(uint32_t crc, size_t n)
{
    while (n-- > 0)
        crc = crc32c_table[0][crc & 0xff] ^ (crc >> 8);
    return crc;
}

static void crc32c_init_shift(uint32_t shift[4][256], size_t n)
{
    uint32_t basis[32];
    for (int bit = 0; bit < 32; bit++)
        basis[bit] = crc32c_zeros_slow(1u << bit, n);
    for (int k = 0; k < 4; k++) {
        for (int byte = 0; byte < 256; byte++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++)
                if (byte & (1 << j))
                    v ^= basis[8 * k + j];
            shift[k][byte] = v;
        }
    }
}

static inline uint32_t crc32c_shift(const uint32_t shift[4][256], uint32_t crc)
{
    return shift[0][crc & 0xff] ^ shift[1][(crc >> 8) & 0xff] ^ shift[2][(crc >> 16) & 0xff] ^
           shift[3][crc >> 24];
}

__attribute__((constructor)) static void crc32c_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
        crc32c_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = crc32c_table[0][n];
        for (int k = 1; k < 8; k++) {
            crc = crc32c_table[0][crc & 0xff] ^ (crc >> 8);
            crc32c_table[k][n] = crc;
        }
    }
    crc32c_init_shift(crc32c_long_shift, CRC32C_LONG);
    crc32c_init_shift(crc32c_short_shift, CRC32C_SHORT);
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc32c_have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static inline uint64_t crc32c_load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Raw CRC (no pre/post inversion), slicing-by-8. Little-endian loads. */
static uint32_t crc32c_sw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t v = crc32c_load64(p) ^ crc;
#else
        uint64_t v = __builtin_bswap64(crc32c_load64(p)) ^ crc;
#endif
        crc = crc32c_table[7][v & 0xff] ^ crc32c_table[6][(v >> 8) & 0xff] ^
              crc32c_table[5][(v >> 16) & 0xff] ^ crc32c_table[4][(v >> 24) & 0xff] ^
              crc32c_table[3][(v >> 32) & 0xff] ^ crc32c_table[2][(v >> 40) & 0xff] ^
              crc32c_table[1][(v >> 48) & 0xff] ^ crc32c_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
/* Three interleaved chains over three adjacent blocks of `block` bytes,
 * repeated while at least 3 * block bytes remain. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_interleave(uint32_t crc,
                                                                       const unsigned char **pp,
                                                                       size_t *lenp, size_t block,
                                                                       const uint32_t shift[4][256])
{
    const unsigned char *p = *pp;
    size_t len = *lenp;
    assert(block % 8 == 0);
    while (len >= 3 * block) {
        uint64_t c0 = crc, c1 = 0, c2 = 0;
        const unsigned char *end = p + block;
        do {
            c0 = __builtin_ia32_crc32di(c0, crc32c_load64(p));
            c1 = __builtin_ia32_crc32di(c1, crc32c_load64(p + block));
            c2 = __builtin_ia32_crc32di(c2, crc32c_load64(p + 2 * block));
            p += 8;
        } while (p < end);
        crc = crc32c_shift(shift, (uint32_t)c0) ^ (uint32_t)c1;
        crc = crc32c_shift(shift, crc) ^ (uint32_t)c2;
        p += 2 * block;
        len -= 3 * block;
    }
    *pp = p;
    *lenp = len;
    return crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_raw(uint32_t crc,
                                                                const unsigned char *p, size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = __builtin_ia32_crc32qi(crc, *p++);
        len--;
    }
    crc = crc32c_hw_interleave(crc, &p, &len, CRC32C_LONG, crc32c_long_shift);
    crc = crc32c_hw_interleave(crc, &p, &len, CRC32C_SHORT, crc32c_short_shift);
    uint64_t c = crc;
    while (len >= 8) {
        c = __builtin_ia32_crc32di(c, crc32c_load64(p));
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len-- > 0)
        crc = __builtin_ia32_crc32qi(crc, *p++);
    return crc;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    assert(data != NULL || len == 0);
#if defined(__x86_64__)
    if (crc32c_have_sse42)
        return ~crc32c_hw_raw(~crc, data, len);
#endif
    return ~crc32c_sw_raw(~crc, data, len);
}

/* The portable path, exported for the unit test that checks the two paths
 * agree (declared there, not in the public header). */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    return ~crc32c_sw_raw(~crc, data, len);
}
