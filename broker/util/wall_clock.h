/* Wall-clock time in milliseconds since the epoch: what Kafka timestamps
 * (records, retention, znode payloads) are measured in. Durations and
 * timeouts use the loop's monotonic clock instead. */
#ifndef VLTAVA_WALL_CLOCK_H
#define VLTAVA_WALL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t wall_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
