/* The log manager: the partition logs of one log directory and the
 * directory-level files (three offset checkpoints in Kafka's text format,
 * "0\n<count>\n<topic> <partition> <offset>\n...", and the clean-shutdown
 * marker). */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_internal.h"
#include "log_manager.h"
#include "vlog.h"
#include "xalloc.h"
#include "topic_name.h"

#define LM_CLEAN_SHUTDOWN_FILE    ".kafka_cleanshutdown"
#define LM_LOCK_FILE              ".lock" /* Kafka's name */
#define LM_RECOVERY_CHECKPOINT    "recovery-point-offset-checkpoint"
#define LM_HW_CHECKPOINT          "replication-offset-checkpoint"
#define LM_START_CHECKPOINT       "log-start-offset-checkpoint"
#define LM_CHECKPOINT_INTERVAL_MS 5000
/* Kafka's limit on topic names; also bounds what checkpoint parsing reads. */
#define LM_TOPIC_MAX              TOPIC_NAME_MAX
#define LM_CHECKPOINT_MAX_ENTRIES 1000000

typedef struct lm_entry {
    char *topic; /* owned */
    int32_t partition;
    partition_log_t *log; /* owned */
    struct lm_entry *next;
} lm_entry_t;

typedef struct lm_failed {
    char *topic; /* owned */
    int32_t partition;
} lm_failed_t;

struct log_manager {
    char *dir;   /* owned */
    int lock_fd; /* <dir>/.lock, flock'ed exclusively while open */
    log_config_t defaults;
    lm_entry_t **buckets;
    size_t nbuckets, count;
    int64_t last_checkpoint_ms; /* -1 until the first tick */
    worker_pool_t *pool;        /* not owned; NULL: inline */
    bool checkpoint_in_flight;
    /* Partition directories found at open that could not be opened: a
     * later log_manager_get_or_create re-validates them in full, as after
     * an unclean shutdown, since their recovery never ran. */
    lm_failed_t *failed; /* owned */
    size_t nfailed;
};

/* One checkpoint file's contents. */
typedef struct lm_checkpoint {
    char (*topics)[LM_TOPIC_MAX + 1];
    int32_t *partitions;
    int64_t *offsets;
    size_t count;
} lm_checkpoint_t;

static uint64_t lm_hash(const char *topic, int32_t partition)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = topic; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return (h ^ (uint32_t)partition) * 1099511628211ull;
}

static lm_entry_t **lm_slot(log_manager_t *lm, const char *topic, int32_t partition)
{
    lm_entry_t **slot = &lm->buckets[lm_hash(topic, partition) & (lm->nbuckets - 1)];
    while (*slot != NULL && ((*slot)->partition != partition || strcmp((*slot)->topic, topic) != 0))
        slot = &(*slot)->next;
    return slot;
}

static void lm_grow(log_manager_t *lm)
{
    size_t nb = lm->nbuckets * 2;
    lm_entry_t **buckets = xcalloc(nb, sizeof(*buckets));
    for (size_t i = 0; i < lm->nbuckets; i++) {
        for (lm_entry_t *e = lm->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            size_t b = lm_hash(e->topic, e->partition) & (nb - 1);
            e->next = buckets[b];
            buckets[b] = e;
        }
    }
    free(lm->buckets);
    lm->buckets = buckets;
    lm->nbuckets = nb;
}

static void lm_insert(log_manager_t *lm, const char *topic, int32_t partition, partition_log_t *log)
{
    assert(*lm_slot(lm, topic, partition) == NULL);
    if (lm->count >= lm->nbuckets)
        lm_grow(lm);
    lm_entry_t *e = xcalloc(1, sizeof(*e));
    e->topic = xstrdup(topic);
    e->partition = partition;
    e->log = log;
    lm_entry_t **slot = lm_slot(lm, topic, partition);
    *slot = e;
    lm->count++;
}

static bool lm_valid_topic(const char *topic)
{
    return topic_name_check(topic, strlen(topic), NULL) == TOPIC_NAME_OK;
}

/* "<topic>-<partition>" -> topic, partition. */
static bool lm_parse_dir_name(const char *name, char *topic, int32_t *partition)
{
    const char *dash = strrchr(name, '-');
    if (dash == NULL || dash == name || dash[1] == '\0' || (size_t)(dash - name) > LM_TOPIC_MAX)
        return false;
    int64_t v = 0;
    for (const char *p = dash + 1; *p; p++) {
        if (*p < '0' || *p > '9' || v > INT32_MAX / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v > INT32_MAX)
        return false;
    memcpy(topic, name, (size_t)(dash - name));
    topic[dash - name] = '\0';
    *partition = (int32_t)v;
    return lm_valid_topic(topic);
}

/* "<topic>-<partition>.<id>-delete": what partition_log_delete renamed. */
static bool lm_is_deleted_dir(const char *name)
{
    size_t len = strlen(name), suffix = strlen(LOG_DIR_DELETE_SUFFIX);
    return len > suffix && strcmp(name + len - suffix, LOG_DIR_DELETE_SUFFIX) == 0 &&
           strchr(name, '.') != NULL;
}

static void lm_checkpoint_free(lm_checkpoint_t *cp)
{
    free(cp->topics);
    free(cp->partitions);
    free(cp->offsets);
    memset(cp, 0, sizeof(*cp));
}

/* Reads a checkpoint file; a missing or malformed one reads as empty. */
static void lm_checkpoint_read(const char *dir, const char *name, lm_checkpoint_t *cp)
{
    memset(cp, 0, sizeof(*cp));
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        free(path);
        return;
    }
    long version = -1, count = -1;
    bool ok = fscanf(f, "%ld %ld", &version, &count) == 2 && version == 0 && count >= 0 &&
              count <= LM_CHECKPOINT_MAX_ENTRIES;
    if (ok && count > 0) {
        cp->topics = xcalloc((size_t)count, sizeof(*cp->topics));
        cp->partitions = xcalloc((size_t)count, sizeof(*cp->partitions));
        cp->offsets = xcalloc((size_t)count, sizeof(*cp->offsets));
    }
    char fmt[32];
    snprintf(fmt, sizeof(fmt), "%%%ds %%" SCNd32 " %%" SCNd64, LM_TOPIC_MAX);
    for (long i = 0; ok && i < count; i++) {
        if (fscanf(f, fmt, cp->topics[i], &cp->partitions[i], &cp->offsets[i]) != 3 ||
            cp->partitions[i] < 0 || cp->offsets[i] < 0)
            ok = false;
        else
            cp->count++;
    }
    fclose(f);
    if (!ok) {
        VLOG_WARN("log", "%s: malformed, ignored", path);
        lm_checkpoint_free(cp);
    }
    free(path);
}

static int64_t lm_checkpoint_find(const lm_checkpoint_t *cp, const char *topic, int32_t partition,
                                  int64_t missing)
{
    for (size_t i = 0; i < cp->count; i++)
        if (cp->partitions[i] == partition && strcmp(cp->topics[i], topic) == 0)
            return cp->offsets[i];
    return missing;
}

static bool lm_file_exists(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    struct stat st;
    bool exists = stat(path, &st) == 0;
    free(path);
    return exists;
}

static int lm_mkdirs(const char *dir)
{
    char *path = xstrdup(dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            free(path);
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
    free(path);
    return rc;
}

static void lm_free(log_manager_t *lm, bool close_logs)
{
    for (size_t i = 0; i < lm->nbuckets; i++) {
        for (lm_entry_t *e = lm->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            if (close_logs)
                partition_log_close(e->log);
            free(e->topic);
            free(e);
        }
    }
    free(lm->buckets);
    for (size_t i = 0; i < lm->nfailed; i++)
        free(lm->failed[i].topic);
    free(lm->failed);
    free(lm->dir);
    /* Closing the descriptor drops the lock; the file stays, as Kafka's
     * does: removing it would let a second opener lock a different inode. */
    if (lm->lock_fd >= 0)
        close(lm->lock_fd);
    free(lm);
}

/* Locks dir against a second broker (or any second opener): returns the
 * locked descriptor, or -1 after logging why (LOG_ERR_LOCKED in *err when
 * another process holds the lock, naming its pid). */
static int lm_lock_dir(const char *dir, log_err_t *err)
{
    assert(dir != NULL && err != NULL);
    char *path = xasprintf("%s/%s", dir, LM_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        VLOG_ERR("log", "open %s: %s", path, strerror(errno));
        *err = LOG_ERR_IO;
        goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int lock_errno = errno;
        char holder[32] = "";
        ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        if (lock_errno == EWOULDBLOCK) {
            VLOG_ERR("log",
                     "log directory %s is in use by another process (pid %s holds %s); two "
                     "brokers must never share a log directory",
                     dir, holder[0] != '\0' ? holder : "unknown", path);
            *err = LOG_ERR_LOCKED;
        } else {
            VLOG_ERR("log", "flock %s: %s", path, strerror(lock_errno));
            *err = LOG_ERR_IO;
        }
        close(fd);
        fd = -1;
        goto fail;
    }
    /* The pid is for the message a second opener prints; the lock itself
     * is the flock. */
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        VLOG_WARN("log", "%s: cannot record this pid: %s", path, strerror(errno));
fail:
    free(path);
    return fd;
}

log_err_t log_manager_open(const char *dir, const log_config_t *defaults, log_manager_t **out)
{
    assert(dir != NULL && defaults != NULL && out != NULL);
    if (lm_mkdirs(dir) != 0) {
        VLOG_ERR("log", "mkdir %s: %s", dir, strerror(errno));
        return LOG_ERR_IO;
    }
    log_err_t lock_err = LOG_OK;
    int lock_fd = lm_lock_dir(dir, &lock_err);
    if (lock_fd < 0)
        return lock_err;
    DIR *d = opendir(dir);
    if (d == NULL) {
        VLOG_ERR("log", "opendir %s: %s", dir, strerror(errno));
        close(lock_fd);
        return LOG_ERR_IO;
    }
    log_manager_t *lm = xcalloc(1, sizeof(*lm));
    lm->dir = xstrdup(dir);
    lm->lock_fd = lock_fd;
    lm->defaults = *defaults;
    lm->nbuckets = 64;
    lm->buckets = xcalloc(lm->nbuckets, sizeof(*lm->buckets));
    lm->last_checkpoint_ms = -1;

    bool clean = lm_file_exists(dir, LM_CLEAN_SHUTDOWN_FILE);
    lm_checkpoint_t recovery, hw;
    lm_checkpoint_read(dir, LM_RECOVERY_CHECKPOINT, &recovery);
    lm_checkpoint_read(dir, LM_HW_CHECKPOINT, &hw);
    log_err_t err = LOG_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char topic[LM_TOPIC_MAX + 1];
        int32_t partition;
        if (lm_is_deleted_dir(de->d_name)) {
            /* A deletion the last run did not finish. */
            char *path = xasprintf("%s/%s", dir, de->d_name);
            char rm_err[512];
            if (log_remove_dir(path, rm_err, sizeof(rm_err)) != 0)
                VLOG_WARN("log", "%s", rm_err);
            free(path);
            continue;
        }
        if (!lm_parse_dir_name(de->d_name, topic, &partition))
            continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            free(path);
            continue;
        }
        /* Without a checkpointed recovery point, everything is re-validated. */
        int64_t rp = lm_checkpoint_find(&recovery, topic, partition, 0);
        partition_log_t *log = NULL;
        err = partition_log_open(path, defaults, rp, clean, &log);
        free(path);
        if (err != LOG_OK) {
            /* This partition only: the broker starts, and the replica
             * layer reports it offline. */
            VLOG_ERR("log", "%s/%s: cannot open (%s); the partition stays offline", dir, de->d_name,
                     partition_log_last_error());
            lm->failed = xrealloc(lm->failed, (lm->nfailed + 1) * sizeof(*lm->failed));
            lm->failed[lm->nfailed++] = (lm_failed_t){xstrdup(topic), partition};
            err = LOG_OK;
            continue;
        }
        partition_log_set_high_watermark(log, lm_checkpoint_find(&hw, topic, partition, 0));
        lm_insert(lm, topic, partition, log);
    }
    closedir(d);
    lm_checkpoint_free(&recovery);
    lm_checkpoint_free(&hw);
    if (err != LOG_OK) {
        lm_free(lm, true);
        return err;
    }
    VLOG_INFO("log", "%s: opened %zu partition log(s) after %s shutdown", dir, lm->count,
              clean ? "a clean" : "an unclean");
    if (clean) {
        /* Running now: a crash from here on must not look clean. */
        char *marker = xasprintf("%s/%s", dir, LM_CLEAN_SHUTDOWN_FILE);
        if (unlink(marker) != 0 || log_fsync_dir(dir) != 0)
            VLOG_ERR("log", "remove %s: %s", marker, strerror(errno));
        free(marker);
    }
    *out = lm;
    return LOG_OK;
}

typedef struct lm_text {
    char *buf;
    size_t len, cap;
} lm_text_t;

static void lm_text_append(lm_text_t *t, const char *topic, int32_t partition, int64_t offset)
{
    size_t need = strlen(topic) + 48;
    if (t->len + need > t->cap) {
        t->cap = (t->cap + need) * 2;
        t->buf = xrealloc(t->buf, t->cap);
    }
    t->len += (size_t)snprintf(t->buf + t->len, t->cap - t->len, "%s %" PRId32 " %" PRId64 "\n",
                               topic, partition, offset);
}

static const char *const lm_checkpoint_names[3] = {LM_RECOVERY_CHECKPOINT, LM_HW_CHECKPOINT,
                                                   LM_START_CHECKPOINT};

/* The three files' contents, from the logs' offsets now. */
static void lm_checkpoint_texts(const log_manager_t *lm, lm_text_t text[3])
{
    for (int k = 0; k < 3; k++) {
        text[k] = (lm_text_t){NULL, 0, 0};
        char head[32];
        int n = snprintf(head, sizeof(head), "0\n%zu\n", lm->count);
        text[k].cap = (size_t)n + 1 + lm->count * 64;
        text[k].buf = xmalloc(text[k].cap);
        memcpy(text[k].buf, head, (size_t)n + 1);
        text[k].len = (size_t)n;
    }
    for (size_t i = 0; i < lm->nbuckets; i++) {
        for (lm_entry_t *e = lm->buckets[i]; e != NULL; e = e->next) {
            lm_text_append(&text[0], e->topic, e->partition, partition_log_recovery_point(e->log));
            lm_text_append(&text[1], e->topic, e->partition, partition_log_high_watermark(e->log));
            lm_text_append(&text[2], e->topic, e->partition, partition_log_start_offset(e->log));
        }
    }
}

log_err_t log_manager_checkpoint(log_manager_t *lm)
{
    assert(lm != NULL);
    lm_text_t text[3];
    lm_checkpoint_texts(lm, text);
    log_err_t rc = LOG_OK;
    for (int k = 0; k < 3; k++) {
        char *path = xasprintf("%s/%s", lm->dir, lm_checkpoint_names[k]);
        char err[512];
        if (log_write_file_atomic(path, text[k].buf, text[k].len, err, sizeof(err)) != LOG_OK) {
            VLOG_ERR("log", "checkpoint: %s", err);
            rc = LOG_ERR_IO;
        }
        free(path);
        free(text[k].buf);
    }
    return rc;
}

typedef struct lm_checkpoint_job {
    log_manager_t *lm; /* outlives the job: the pool stops before close */
    int dir_fd;        /* owned */
    lm_text_t text[3]; /* owned */
    int rc;
    char err[512];
} lm_checkpoint_job_t;

static void lm_checkpoint_job_work(void *arg)
{
    lm_checkpoint_job_t *job = arg;
    for (int k = 0; k < 3; k++)
        if (log_write_file_at(job->dir_fd, lm_checkpoint_names[k], job->text[k].buf,
                              job->text[k].len, job->err, sizeof(job->err)) != 0)
            job->rc = -1;
    close(job->dir_fd);
}

static void lm_checkpoint_job_done(void *arg)
{
    lm_checkpoint_job_t *job = arg;
    assert(job->lm->checkpoint_in_flight);
    job->lm->checkpoint_in_flight = false;
    if (job->rc != 0)
        VLOG_ERR("log", "%s: checkpoint: %s", job->lm->dir, job->err);
    for (int k = 0; k < 3; k++)
        free(job->text[k].buf);
    free(job);
}

/* The periodic checkpoint: on the pool, one at a time; inline without. */
static void lm_checkpoint_async(log_manager_t *lm)
{
    if (lm->pool == NULL) {
        log_manager_checkpoint(lm);
        return;
    }
    if (lm->checkpoint_in_flight)
        return;
    int dir_fd = log_open_dir_fd(lm->dir);
    if (dir_fd < 0) {
        VLOG_ERR("log", "open %s for a checkpoint: %s", lm->dir, strerror(errno));
        return;
    }
    lm_checkpoint_job_t *job = xcalloc(1, sizeof(*job));
    job->lm = lm;
    job->dir_fd = dir_fd;
    lm_checkpoint_texts(lm, job->text);
    if (!worker_pool_submit(lm->pool, (uint64_t)(uintptr_t)lm, lm_checkpoint_job_work,
                            lm_checkpoint_job_done, job)) {
        close(dir_fd);
        for (int k = 0; k < 3; k++)
            free(job->text[k].buf);
        free(job);
        return; /* the pool is full: the next interval writes them */
    }
    lm->checkpoint_in_flight = true;
}

void log_manager_set_worker_pool(log_manager_t *lm, worker_pool_t *pool)
{
    assert(lm != NULL);
    assert(!lm->checkpoint_in_flight);
    lm->pool = pool;
    for (size_t i = 0; i < lm->nbuckets; i++)
        for (lm_entry_t *e = lm->buckets[i]; e != NULL; e = e->next)
            partition_log_set_worker_pool(e->log, pool);
}

void log_manager_close(log_manager_t *lm)
{
    if (lm == NULL)
        return;
    assert(!lm->checkpoint_in_flight); /* the pool was stopped first */
    bool ok = true;
    for (size_t i = 0; i < lm->nbuckets; i++)
        for (lm_entry_t *e = lm->buckets[i]; e != NULL; e = e->next)
            ok = partition_log_flush(e->log) == LOG_OK && ok;
    ok = log_manager_checkpoint(lm) == LOG_OK && ok;
    char *dir = xstrdup(lm->dir);
    lm_free(lm, true);
    if (ok) {
        char *marker = xasprintf("%s/%s", dir, LM_CLEAN_SHUTDOWN_FILE);
        char err[512];
        if (log_write_file_atomic(marker, "", 0, err, sizeof(err)) != LOG_OK)
            VLOG_ERR("log", "clean-shutdown marker: %s", err);
        free(marker);
    } else {
        VLOG_ERR("log", "%s: flush failed; no clean-shutdown marker, recovery will run", dir);
    }
    free(dir);
}

partition_log_t *log_manager_get(log_manager_t *lm, const char *topic, int32_t partition)
{
    assert(lm != NULL && topic != NULL);
    lm_entry_t *e = *lm_slot(lm, topic, partition);
    return e != NULL ? e->log : NULL;
}

log_err_t log_manager_get_or_create(log_manager_t *lm, const char *topic, int32_t partition,
                                    const log_config_t *cfg, partition_log_t **out)
{
    assert(lm != NULL && topic != NULL && out != NULL);
    partition_log_t *log = log_manager_get(lm, topic, partition);
    if (log != NULL && partition_log_failed(log)) {
        log_error("%s-%" PRId32 ": an fsync of its log failed; offline until a restart", topic,
                  partition);
        return LOG_ERR_IO;
    }
    if (log != NULL) {
        *out = log;
        return LOG_OK;
    }
    if (!lm_valid_topic(topic) || partition < 0) {
        VLOG_ERR("log", "refusing partition log for '%s'-%" PRId32, topic, partition);
        return LOG_ERR_IO;
    }
    size_t failed = lm->nfailed;
    for (size_t i = 0; i < lm->nfailed && failed == lm->nfailed; i++)
        if (lm->failed[i].partition == partition && strcmp(lm->failed[i].topic, topic) == 0)
            failed = i;
    char *path = xasprintf("%s/%s-%" PRId32, lm->dir, topic, partition);
    /* New partitions open clean (nothing to recover); one that failed at
     * open is re-validated from its start. */
    log_err_t err =
        partition_log_open(path, cfg != NULL ? cfg : &lm->defaults, 0, failed == lm->nfailed, &log);
    free(path);
    if (err != LOG_OK)
        return err;
    if (failed < lm->nfailed) {
        free(lm->failed[failed].topic);
        lm->failed[failed] = lm->failed[--lm->nfailed];
    }
    partition_log_set_worker_pool(log, lm->pool);
    lm_insert(lm, topic, partition, log);
    *out = log;
    return LOG_OK;
}

log_err_t log_manager_delete(log_manager_t *lm, const char *topic, int32_t partition)
{
    assert(lm != NULL && topic != NULL);
    lm_entry_t **slot = lm_slot(lm, topic, partition);
    lm_entry_t *e = *slot;
    if (e == NULL)
        return LOG_OK;
    *slot = e->next;
    lm->count--;
    log_err_t err = partition_log_delete(e->log);
    free(e->topic);
    free(e);
    return err;
}

void log_manager_foreach(log_manager_t *lm, log_manager_visit_fn fn, void *arg)
{
    assert(lm != NULL && fn != NULL);
    for (size_t i = 0; i < lm->nbuckets; i++) {
        for (lm_entry_t *e = lm->buckets[i], *next; e != NULL; e = next) {
            next = e->next; /* fn may delete e */
            fn(arg, e->topic, e->partition, e->log);
        }
    }
}

void log_manager_foreach_failed(const log_manager_t *lm, log_manager_failed_fn fn, void *arg)
{
    assert(lm != NULL && fn != NULL);
    for (size_t i = 0; i < lm->nfailed; i++)
        fn(arg, lm->failed[i].topic, lm->failed[i].partition);
}

void log_manager_tick(log_manager_t *lm, int64_t now_ms)
{
    assert(lm != NULL);
    for (size_t i = 0; i < lm->nbuckets; i++)
        for (lm_entry_t *e = lm->buckets[i]; e != NULL; e = e->next)
            partition_log_tick(e->log, now_ms);
    if (lm->last_checkpoint_ms < 0)
        lm->last_checkpoint_ms = now_ms;
    if (now_ms - lm->last_checkpoint_ms >= LM_CHECKPOINT_INTERVAL_MS) {
        lm_checkpoint_async(lm);
        lm->last_checkpoint_ms = now_ms;
    }
}

const log_config_t *log_manager_defaults(const log_manager_t *lm)
{
    return &lm->defaults;
}
