/* The replication token bucket (replica_throttle.h). */
#include "replica_throttle.h"

#include <assert.h>

/* The bucket holds at most one second of the rate: a burst after idling
 * is bounded like the steady flow. */
#define BURST_SECONDS 1.0

void replica_throttle_init(replica_throttle_t *t, int64_t rate, int64_t now_ms)
{
    t->rate = rate > 0 && rate < INT64_MAX ? rate : 0;
    t->tokens = (double)t->rate * BURST_SECONDS;
    t->last_ms = now_ms;
    assert(t->rate >= 0);
}

bool replica_throttle_enabled(const replica_throttle_t *t)
{
    return t->rate > 0;
}

static void refill(replica_throttle_t *t, int64_t now_ms)
{
    assert(t->rate > 0);
    if (now_ms > t->last_ms) {
        double cap = (double)t->rate * BURST_SECONDS;
        t->tokens += (double)t->rate * (double)(now_ms - t->last_ms) / 1000.0;
        if (t->tokens > cap)
            t->tokens = cap;
        t->last_ms = now_ms;
    }
    assert(t->tokens <= (double)t->rate * BURST_SECONDS);
}

bool replica_throttle_allows(replica_throttle_t *t, int64_t now_ms)
{
    if (!replica_throttle_enabled(t))
        return true;
    refill(t, now_ms);
    return t->tokens > 0;
}

void replica_throttle_consume(replica_throttle_t *t, int64_t bytes, int64_t now_ms)
{
    assert(bytes >= 0);
    if (!replica_throttle_enabled(t))
        return;
    refill(t, now_ms);
    t->tokens -= (double)bytes;
}

int64_t replica_throttle_wait_ms(replica_throttle_t *t, int64_t now_ms)
{
    if (replica_throttle_allows(t, now_ms))
        return 0;
    assert(t->tokens <= 0);
    /* The first moment the bucket holds a byte again. */
    return (int64_t)((1.0 - t->tokens) * 1000.0 / (double)t->rate) + 1;
}
