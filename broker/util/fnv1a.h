/* FNV-1a (64-bit), the one hash of the broker's in-memory tables keyed by
 * names and ids. Not for anything an attacker could aim at: the tables
 * bound their chains or load, not the hash. Chain calls to hash several
 * fields: fnv1a(fnv1a(FNV1A_BASIS, a, alen), b, blen). */
#ifndef VLTAVA_FNV1A_H
#define VLTAVA_FNV1A_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_BASIS 1469598103934665603ULL

static inline uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#endif
