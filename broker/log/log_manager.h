/* The log manager: one log directory holding many partition logs
 * (<log.dir>/<topic>-<partition>/), plus the per-directory files Kafka
 * keeps: recovery-point-offset-checkpoint, replication-offset-checkpoint
 * (high watermarks), log-start-offset-checkpoint and the clean-shutdown
 * marker (.kafka_cleanshutdown).
 *
 * Locality: owned by the broker's loop thread. It owns every
 * partition_log_t it returns.
 */
#ifndef VLTAVA_LOG_MANAGER_H
#define VLTAVA_LOG_MANAGER_H

#include "partition_log.h"
#include "worker_pool.h"

typedef struct log_manager log_manager_t;

/* Opens the directory (created if absent), takes its lock (an exclusive
 * flock on <dir>/.lock, holding this process's pid, kept until
 * log_manager_close: LOG_ERR_LOCKED, with the holder's pid in the log, when
 * another process has it), reads the checkpoints and the
 * clean-shutdown marker (then removes the marker: we are running now), and
 * opens every partition directory in it, recovering those that need it. A
 * partition directory that cannot be opened (EIO, EACCES, EMFILE...) is
 * logged with its cause and left out; log_manager_get_or_create tries it
 * again later, re-validating it in full.
 * Logs open with `defaults`; the broker applies topic overrides later with
 * partition_log_set_config(). */
log_err_t log_manager_open(const char *dir, const log_config_t *defaults, log_manager_t **out);
/* From now on the logs' fsyncs (flush.messages, flush.ms), checkpoint
 * writes (the three offset checkpoints, leader-epoch-checkpoint, and what
 * other modules write through partition_log_write_file) and segment
 * deletions run on pool and complete on the loop; NULL: all inline.
 * Start-up recovery (log_manager_open) and the final flush and
 * checkpoints (log_manager_close) stay synchronous: stop the pool
 * (worker_pool_stop) before log_manager_close, so that every completion
 * has run while the logs exist. */
void log_manager_set_worker_pool(log_manager_t *lm, worker_pool_t *pool);
/* Flushes everything, writes the checkpoints and the clean-shutdown marker,
 * closes every log and frees the manager. */
void log_manager_close(log_manager_t *lm);

partition_log_t *log_manager_get(log_manager_t *lm, const char *topic, int32_t partition);
/* Returns the existing log or opens (creating if needed) the partition's
 * directory with cfg (NULL: the defaults). On failure the cause (path,
 * strerror) is in partition_log_last_error(). */
log_err_t log_manager_get_or_create(log_manager_t *lm, const char *topic, int32_t partition,
                                    const log_config_t *cfg, partition_log_t **out);
/* Deletes the partition's directory and forgets it. */
log_err_t log_manager_delete(log_manager_t *lm, const char *topic, int32_t partition);

typedef void (*log_manager_visit_fn)(void *arg, const char *topic, int32_t partition,
                                     partition_log_t *log);
void log_manager_foreach(log_manager_t *lm, log_manager_visit_fn fn, void *arg);

/* The partition directories log_manager_open found but could not open,
 * that have not opened since: the replica layer starts with them offline,
 * so that its first report to the controller names them. */
typedef void (*log_manager_failed_fn)(void *arg, const char *topic, int32_t partition);
void log_manager_foreach_failed(const log_manager_t *lm, log_manager_failed_fn fn, void *arg);

/* Periodic work for every log (see partition_log_tick) and, every
 * checkpoint interval, the checkpoint files. */
void log_manager_tick(log_manager_t *lm, int64_t now_ms);
/* Writes the three checkpoint files now (write to temp, fsync, rename), on
 * the calling thread. The periodic ones (log_manager_tick) go to the
 * worker pool when there is one, one write of the three in flight at a
 * time (a tick meanwhile skips), so an older one never lands last. */
log_err_t log_manager_checkpoint(log_manager_t *lm);
const log_config_t *log_manager_defaults(const log_manager_t *lm);

#endif
