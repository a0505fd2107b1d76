/* Shared helpers of the log unit tests: RecordBatch v2 construction (real
 * varint records, real CRC-32C) and temp directories. */
#ifndef VLTAVA_LOG_TEST_H
#define VLTAVA_LOG_TEST_H

#include <stddef.h>
#include <stdint.h>

/* Builds one uncompressed batch of `records` records, each with a key
 * "k<i>" and a value of value_size bytes derived from seed, timestamps
 * first_ts + i. Returns the size written into out (0 if cap is too
 * small). BaseOffset 0, PartitionLeaderEpoch -1. */
size_t log_test_build_batch(uint8_t *out, size_t cap, int records, size_t value_size,
                            int64_t first_ts, uint32_t seed);
/* The same, in a fresh allocation (caller frees). */
uint8_t *log_test_batch(int records, size_t value_size, int64_t first_ts, uint32_t seed,
                        size_t *len);
/* Recomputes the CRC of a batch after a test edited it. */
void log_test_fix_crc(uint8_t *batch);

/* mkdtemp under $TMPDIR (caller frees); rm -rf. */
char *log_test_tmpdir(void);
void log_test_rmrf(const char *path);

void log_test_add_crc(void);
void log_test_add_partition(void);
void log_test_add_recovery(void);
void log_test_add_model(void);
void log_test_add_manager(void);
void log_test_add_txn(void);
void log_test_add_fd_cache(void);
void log_test_add_fsync(void);

#endif
