/* CRC-32C: known vectors, and the hardware path against the portable one. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "log_test.h"

uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);

static void test_crc_known_vectors(void)
{
    CU_ASSERT_EQUAL(crc32c(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(crc32c_portable(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(crc32c(0, "", 0), 0u);
    /* RFC 3720 B.4: 32 bytes of zeros, of 0xff, and an ascending ramp. */
    unsigned char buf[32];
    memset(buf, 0, sizeof(buf));
    CU_ASSERT_EQUAL(crc32c(0, buf, sizeof(buf)), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    CU_ASSERT_EQUAL(crc32c(0, buf, sizeof(buf)), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    CU_ASSERT_EQUAL(crc32c(0, buf, sizeof(buf)), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    CU_ASSERT_EQUAL(crc32c(0, buf, sizeof(buf)), 0x113FDB5Cu);
}

/* Every length around the interleave block sizes, odd alignments, and
 * incremental continuation must agree with the portable tables. */
static void test_crc_matches_portable(void)
{
    size_t max = 3 * 4096 * 2 + 1000;
    unsigned char *buf = malloc(max + 16);
    CU_ASSERT_FATAL(buf != NULL);
    srand(12345);
    for (size_t i = 0; i < max + 16; i++)
        buf[i] = (unsigned char)rand();
    size_t lens[] = {0,   1,    7,    8,    9,     255,   256,   767,   768,
                     769, 1000, 4095, 4096, 12287, 12288, 12289, 20000, 3 * 4096 * 2 + 1000};
    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
        for (size_t align = 0; align < 8; align++) {
            size_t len = lens[li];
            uint32_t hw = crc32c(0, buf + align, len);
            CU_ASSERT_EQUAL(hw, crc32c_portable(0, buf + align, len));
            size_t split = len / 3;
            uint32_t inc = crc32c(crc32c(0, buf + align, split), buf + align + split, len - split);
            CU_ASSERT_EQUAL(inc, hw);
        }
    }
    for (int round = 0; round < 2000; round++) {
        size_t off = (size_t)rand() % 16;
        size_t len = (size_t)rand() % (max - 16);
        CU_ASSERT_EQUAL(crc32c(0x1234, buf + off, len), crc32c_portable(0x1234, buf + off, len));
    }
    free(buf);
}

void log_test_add_crc(void)
{
    CU_pSuite suite = CU_add_suite("crc32c", NULL, NULL);
    CU_add_test(suite, "known vectors", test_crc_known_vectors);
    CU_add_test(suite, "hardware matches portable", test_crc_matches_portable);
}
