/* CRC-32C (Castagnoli), as RecordBatch v2 uses. Uses the SSE4.2 crc32
 * instruction when the CPU has it, a slicing table otherwise. */
#ifndef VLTAVA_CRC32C_H
#define VLTAVA_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues `crc` (0 to start) over len bytes. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
