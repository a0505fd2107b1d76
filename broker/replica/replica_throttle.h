/* A token bucket on replication bytes: leader.replication.throttled.rate
 * and follower.replication.throttled.rate (bytes/s), which bound the copy
 * of a partition onto the replicas a reassignment adds, as Kafka applies
 * them (ReplicationQuotaManager): the leader stops serving such a replica
 * while its bucket is empty, the follower stops fetching for it. Kafka
 * checks "quota exceeded" before a read and records the bytes after, so a
 * read may overdraw the bucket; the debt is then paid back in time. A
 * replica in the ISR is never throttled.
 *
 * Pure: time is passed in (milliseconds on any monotonic clock). */
#ifndef VLTAVA_REPLICA_THROTTLE_H
#define VLTAVA_REPLICA_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct replica_throttle {
    int64_t rate;    /* bytes per second; 0: unthrottled */
    double tokens;   /* bytes that may still go; negative: overdrawn */
    int64_t last_ms; /* when tokens were last refilled */
} replica_throttle_t;

/* rate <= 0 or INT64_MAX (Kafka's default): unthrottled. Starts full: one
 * second's worth of bytes. */
void replica_throttle_init(replica_throttle_t *t, int64_t rate, int64_t now_ms);
bool replica_throttle_enabled(const replica_throttle_t *t);
/* True when bytes may go now (the bucket is not empty), always when
 * unthrottled. */
bool replica_throttle_allows(replica_throttle_t *t, int64_t now_ms);
/* Records bytes sent (or fetched). */
void replica_throttle_consume(replica_throttle_t *t, int64_t bytes, int64_t now_ms);
/* Milliseconds until replica_throttle_allows turns true (0: now). */
int64_t replica_throttle_wait_ms(replica_throttle_t *t, int64_t now_ms);

#endif
