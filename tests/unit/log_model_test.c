/* Randomized model test: thousands of random appends (client and replica,
 * some invalid; abort markers with their aborted transactions), rolls,
 * truncations, retention, flushes, clean restarts, simulated crashes
 * (abandon without flushing, then chop, zero-extend or corrupt the last
 * segment) and producer-state replays (drop the aborted transactions from an
 * offset and add them again), checked after every step against a plain
 * in-memory list of batches and of aborted transactions. VLTAVA_LOG_MODEL_SEED and
 * VLTAVA_LOG_MODEL_STEPS override the seed and the length. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "log_test.h"
#include "log_test_util.h"
#include "record_batch.h"

typedef struct mbatch {
    int64_t base;
    int count;
    int64_t first_ts;
    uint8_t *bytes;
    size_t len;
} mbatch_t;

typedef struct model {
    mbatch_t *b;
    int n, cap;
    int64_t start, end;
    log_aborted_txn_t *txns; /* in last_offset order */
    int ntxns, txns_cap;
} model_t;

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n == 0 ? 0 : (uint32_t)(rng_state % n);
}

static void model_push(model_t *m, const uint8_t *bytes, size_t len, int count, int64_t first_ts)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->b = realloc(m->b, (size_t)m->cap * sizeof(*m->b));
    }
    mbatch_t *b = &m->b[m->n++];
    b->base = test_be64(bytes);
    CU_ASSERT_EQUAL(b->base, m->end);
    b->count = count;
    b->first_ts = first_ts;
    b->bytes = malloc(len);
    memcpy(b->bytes, bytes, len);
    b->len = len;
    m->end = b->base + count;
}

static void model_push_txn(model_t *m, log_aborted_txn_t t)
{
    if (m->ntxns == m->txns_cap) {
        m->txns_cap = m->txns_cap ? 2 * m->txns_cap : 64;
        m->txns = realloc(m->txns, (size_t)m->txns_cap * sizeof(*m->txns));
    }
    m->txns[m->ntxns++] = t;
}

static void model_truncate(model_t *m, int64_t off)
{
    while (m->n > 0 && m->b[m->n - 1].base + m->b[m->n - 1].count - 1 >= off) {
        free(m->b[m->n - 1].bytes);
        m->n--;
    }
    m->end = m->n > 0 ? m->b[m->n - 1].base + m->b[m->n - 1].count : m->start;
    while (m->ntxns > 0 && m->txns[m->ntxns - 1].last_offset >= m->end)
        m->ntxns--;
}

static void model_reset(model_t *m, int64_t start)
{
    model_truncate(m, INT64_MIN);
    m->ntxns = 0;
    m->start = m->end = start;
}

static void model_drop_front(model_t *m, int64_t start)
{
    int k = 0;
    while (k < m->n && m->b[k].base < start) {
        free(m->b[k].bytes);
        k++;
    }
    CU_ASSERT(k == m->n ? start == m->end : m->b[k].base == start);
    if (m->n > k)
        memmove(m->b, m->b + k, (size_t)(m->n - k) * sizeof(*m->b));
    m->n -= k;
    m->start = start;
    /* Each entry went with the segment holding its marker. */
    int t = 0;
    while (t < m->ntxns && m->txns[t].last_offset < start)
        t++;
    if (t > 0)
        memmove(m->txns, m->txns + t, (size_t)(m->ntxns - t) * sizeof(*m->txns));
    m->ntxns -= t;
}

static int model_find(const model_t *m, int64_t off)
{
    for (int i = 0; i < m->n; i++)
        if (off < m->b[i].base + m->b[i].count)
            return i;
    return m->n;
}

/* One random read compared with the model. */
static void check_read(partition_log_t *log, const model_t *m, int64_t off, int64_t max_bytes,
                       int64_t max_offset)
{
    uint8_t *data;
    size_t len;
    log_read_t rd;
    log_err_t err = test_read(log, off, max_bytes, max_offset, &data, &len, &rd);
    CU_ASSERT_EQUAL_FATAL(err, LOG_OK);
    int i = model_find(m, off);
    size_t at = 0;
    int taken = 0;
    for (; i < m->n && at < len; i++, taken++) {
        const mbatch_t *b = &m->b[i];
        CU_ASSERT_FATAL(b->base + b->count - 1 < max_offset);
        CU_ASSERT_FATAL(at + b->len <= len);
        CU_ASSERT_FATAL(memcmp(data + at, b->bytes, b->len) == 0);
        at += b->len;
    }
    CU_ASSERT_EQUAL_FATAL(at, len);
    /* Not cut short without reason: the next batch would break a bound,
     * or the range slots ran out. */
    if (i < m->n && rd.nranges < LOG_READ_MAX_RANGES) {
        const mbatch_t *b = &m->b[i];
        bool over_offset = b->base + b->count - 1 >= max_offset;
        bool over_bytes = taken > 0 && (int64_t)(at + b->len) > max_bytes;
        CU_ASSERT_FATAL(over_offset || over_bytes);
    }
    if (taken > 0)
        CU_ASSERT_EQUAL(rd.next_offset, m->b[i - 1].base + m->b[i - 1].count);
    free(data);
}

/* The aborted transactions a fetch from `fetch` up to `upper` reports,
 * against every model entry that ranges over that span. */
static void check_collect(partition_log_t *log, const model_t *m, int64_t fetch, int64_t upper)
{
    log_aborted_txn_t *got = malloc(((size_t)m->ntxns + 1) * sizeof(*got));
    size_t n;
    CU_ASSERT_EQUAL_FATAL(
        partition_log_collect_aborted_txns(log, fetch, upper, got, (size_t)m->ntxns + 1, &n),
        LOG_OK);
    size_t want = 0;
    for (int i = 0; i < m->ntxns; i++) {
        const log_aborted_txn_t *t = &m->txns[i];
        if (t->last_offset < fetch || t->first_offset >= upper)
            continue;
        CU_ASSERT_FATAL(want < n);
        CU_ASSERT_FATAL(memcmp(&got[want], t, sizeof(*t)) == 0);
        want++;
    }
    CU_ASSERT_EQUAL_FATAL(n, want);
    free(got);
}

static void check_full(partition_log_t *log, const model_t *m)
{
    check_collect(log, m, m->start, m->end);
    CU_ASSERT_EQUAL_FATAL(partition_log_start_offset(log), m->start);
    CU_ASSERT_EQUAL_FATAL(partition_log_end_offset(log), m->end);
    int64_t off = m->start;
    int i = 0;
    while (off < m->end) {
        uint8_t *data;
        size_t len;
        log_read_t rd;
        CU_ASSERT_EQUAL_FATAL(test_read(log, off, 1 << 16, m->end, &data, &len, &rd), LOG_OK);
        CU_ASSERT_FATAL(len > 0);
        size_t at = 0;
        while (at < len) {
            CU_ASSERT_FATAL(i < m->n);
            CU_ASSERT_FATAL(memcmp(data + at, m->b[i].bytes, m->b[i].len) == 0);
            at += m->b[i].len;
            i++;
        }
        off = rd.next_offset;
        free(data);
    }
    CU_ASSERT_EQUAL(i, m->n);
    /* offset_for_time against the model: the first record at or after ts. */
    for (int k = 0; k < 10; k++) {
        int64_t ts = 1000000 + rnd(110000);
        int64_t want = -1, o, t;
        for (int j = 0; j < m->n && want < 0; j++)
            if (m->b[j].first_ts + m->b[j].count - 1 >= ts)
                want =
                    ts <= m->b[j].first_ts ? m->b[j].base : m->b[j].base + (ts - m->b[j].first_ts);
        CU_ASSERT_EQUAL(partition_log_offset_for_time(log, ts, &o, &t), LOG_OK);
        CU_ASSERT_EQUAL(o, want);
    }
}

static int64_t last_segment_base(const char *dir)
{
    DIR *d = opendir(dir);
    int64_t best = -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l == 24 && strcmp(de->d_name + 20, ".log") == 0) {
            int64_t base = atoll(de->d_name);
            if (base > best)
                best = base;
        }
    }
    closedir(d);
    return best;
}

/* Damages the last segment as a crash might and returns the offset the log
 * should recover to. */
static int64_t damage_last_segment(const char *dir, const model_t *m)
{
    int64_t base = last_segment_base(dir);
    char *p = test_seg_path(dir, base, ".log");
    int64_t size = test_file_size(p);
    int64_t survive_end = m->end;
    int kind = (int)rnd(4);
    int first = model_find(m, base);
    if (kind == 0 && size > 0) { /* chop anywhere */
        int64_t cut = rnd((uint32_t)size);
        CU_ASSERT_EQUAL(truncate(p, cut), 0);
        int64_t pos = 0;
        survive_end = base;
        for (int i = first; i < m->n && pos + (int64_t)m->b[i].len <= cut; i++) {
            pos += (int64_t)m->b[i].len;
            survive_end = m->b[i].base + m->b[i].count;
        }
    } else if (kind == 1) { /* zero-filled tail */
        CU_ASSERT_EQUAL(truncate(p, size + 1 + rnd(5000)), 0);
    } else if (kind == 2 && first < m->n) { /* a flipped bit under some batch's CRC */
        int victim = first + (int)rnd((uint32_t)(m->n - first));
        int64_t pos = 0;
        for (int i = first; i < victim; i++)
            pos += (int64_t)m->b[i].len;
        int64_t at = pos + 17 + rnd((uint32_t)(m->b[victim].len - 17));
        int fd = open(p, O_RDWR);
        uint8_t c;
        CU_ASSERT_EQUAL(pread(fd, &c, 1, at), 1);
        c ^= (uint8_t)(1u << rnd(8));
        CU_ASSERT_EQUAL(pwrite(fd, &c, 1, at), 1);
        close(fd);
        survive_end = m->b[victim].base;
    }
    free(p);
    return survive_end;
}

static void test_model(void)
{
    const char *seed_env = getenv("VLTAVA_LOG_MODEL_SEED");
    const char *steps_env = getenv("VLTAVA_LOG_MODEL_STEPS");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : 20261121;
    int steps = steps_env ? atoi(steps_env) : 4000;
    rng_state = seed * 2654435761u + 1;
    char *dir = log_test_tmpdir();
    log_config_t cfg;
    log_config_defaults(&cfg);
    cfg.segment_bytes = 3000;
    cfg.index_interval_bytes = 256;
    cfg.retention_ms = -1;
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(dir, &cfg, 0, true, &log), LOG_OK);
    model_t m = {0};
    int32_t epoch = 0;
    int crashes = 0, reopens = 0, truncations = 0, retained = 0, refused = 0, replays = 0,
        most_txns = 0;
    uint8_t *buf = malloc(64 * 1024);
    for (int step = 0; step < steps; step++) {
        uint32_t op = rnd(100);
        if (op < 12) { /* an abort marker and its aborted transaction */
            uint8_t marker[RECORD_BATCH_TXN_MARKER_SIZE];
            int64_t pid = rnd(50), ts = 1000000 + rnd(100000);
            record_batch_build_txn_marker(marker, pid, 0, false, 1, ts);
            log_append_info_t info;
            CU_ASSERT_EQUAL_FATAL(
                partition_log_append_control(log, marker, sizeof(marker), epoch, 0, &info), LOG_OK);
            model_push(&m, marker, sizeof(marker), 1, ts);
            /* Transactions one after another, so that every last stable
             * offset up to the marker's + 1 is one Kafka could record. */
            int64_t after = m.ntxns > 0 ? m.txns[m.ntxns - 1].last_offset + 1 : 0;
            int64_t first = after + rnd((uint32_t)(info.last_offset - after + 1));
            int64_t lso = first + rnd((uint32_t)(info.last_offset - first + 2));
            CU_ASSERT_EQUAL_FATAL(
                partition_log_add_aborted_txn(log, pid, first, info.last_offset, lso), LOG_OK);
            model_push_txn(&m, (log_aborted_txn_t){pid, first, info.last_offset, lso});
            if (m.ntxns > most_txns)
                most_txns = m.ntxns;
        } else if (op < 14) { /* the replica layer's replay from an offset */
            int64_t from = m.start + rnd((uint32_t)(m.end - m.start + 1));
            CU_ASSERT_EQUAL_FATAL(partition_log_drop_aborted_txns_from(log, from), LOG_OK);
            size_t left = 1;
            log_aborted_txn_t none;
            CU_ASSERT_EQUAL_FATAL(
                partition_log_collect_aborted_txns(log, from, m.end, &none, 1, &left), LOG_OK);
            CU_ASSERT_EQUAL_FATAL(left, 0);
            for (int i = 0; i < m.ntxns; i++) {
                const log_aborted_txn_t *t = &m.txns[i];
                if (t->last_offset >= from)
                    CU_ASSERT_EQUAL_FATAL(
                        partition_log_add_aborted_txn(log, t->producer_id, t->first_offset,
                                                      t->last_offset, t->last_stable_offset),
                        LOG_OK);
            }
            replays++;
        } else if (op < 55) { /* client append of 1-3 batches, sometimes one corrupt */
            int k = 1 + (int)rnd(3);
            size_t len = 0;
            int counts[3];
            int64_t tss[3];
            for (int j = 0; j < k; j++) {
                counts[j] = 1 + (int)rnd(6);
                tss[j] = 1000000 + rnd(100000);
                len += log_test_build_batch(buf + len, 64 * 1024 - len, counts[j], rnd(300), tss[j],
                                            rnd(1u << 30));
            }
            bool corrupt = rnd(20) == 0;
            if (corrupt)
                buf[len - 1 - rnd(20)] ^= 0x10;
            if (rnd(10) == 0)
                epoch++;
            log_append_info_t info;
            log_err_t err = partition_log_append(log, buf, len, epoch, 0, &info);
            if (corrupt) {
                CU_ASSERT_EQUAL(err, LOG_ERR_BAD_CRC);
                refused++;
            } else {
                CU_ASSERT_EQUAL_FATAL(err, LOG_OK);
                size_t at = 0;
                for (int j = 0; j < k; j++) {
                    size_t bl = (size_t)(12 + test_be32(buf + at + 8));
                    model_push(&m, buf + at, bl, counts[j], tss[j]);
                    at += bl;
                }
            }
        } else if (op < 65) { /* replica append, sometimes misplaced */
            int count = 1 + (int)rnd(4);
            int64_t ts = 1000000 + rnd(100000);
            size_t len = log_test_build_batch(buf, 64 * 1024, count, rnd(200), ts, rnd(1000));
            int shift = rnd(8) == 0 ? (rnd(2) ? 1 : -1) : 0;
            int64_t base = m.end + shift;
            if (base < 0)
                base = 0;
            log_put_be64(buf, (uint64_t)base);
            log_put_be32(buf + 12, (uint32_t)epoch);
            log_append_info_t info;
            log_err_t err = partition_log_append_replica(log, buf, len, &info);
            if (base > m.end) {
                CU_ASSERT_EQUAL(err, LOG_ERR_GAP);
            } else if (base < m.end) {
                CU_ASSERT_EQUAL(err, LOG_ERR_OVERLAP);
            } else {
                CU_ASSERT_EQUAL_FATAL(err, LOG_OK);
                model_push(&m, buf, len, count, ts);
            }
        } else if (op < 72) { /* truncate to a random offset */
            int64_t off = m.start + rnd((uint32_t)(m.end - m.start + 1));
            CU_ASSERT_EQUAL_FATAL(partition_log_truncate_to(log, off), LOG_OK);
            model_truncate(&m, off);
            truncations++;
        } else if (op < 74) { /* truncate fully */
            int64_t off = m.end + rnd(10);
            CU_ASSERT_EQUAL_FATAL(partition_log_truncate_fully(log, off), LOG_OK);
            model_reset(&m, off);
        } else if (op < 80) { /* retention by size below a random high watermark */
            int64_t hw = m.start + rnd((uint32_t)(m.end - m.start + 1));
            partition_log_set_high_watermark(log, hw);
            log_config_t c = cfg;
            c.retention_bytes = 1000 + rnd(20000);
            partition_log_set_config(log, &c);
            int deleted = partition_log_tick(log, 0);
            partition_log_set_config(log, &cfg);
            int64_t start = partition_log_start_offset(log);
            CU_ASSERT(start >= m.start && start <= hw);
            CU_ASSERT_EQUAL(deleted > 0, start > m.start);
            model_drop_front(&m, start);
            retained += deleted;
        } else if (op < 84) {
            CU_ASSERT_EQUAL(partition_log_flush(log), LOG_OK);
            CU_ASSERT_EQUAL(partition_log_recovery_point(log), m.end);
        } else if (op < 93) { /* crash, maybe with damage, then recover */
            int64_t rp = partition_log_recovery_point(log);
            partition_log_abandon(log);
            int64_t base = last_segment_base(dir);
            int64_t survive = rnd(3) ? damage_last_segment(dir, &m) : m.end;
            /* Recovery starts at or below the last segment (and never
             * above the true recovery point). */
            int64_t from = rp < base ? rp : base;
            int64_t rp_used = from <= 0 ? 0 : rnd((uint32_t)from + 1);
            CU_ASSERT_EQUAL_FATAL(partition_log_open(dir, &cfg, rp_used, false, &log), LOG_OK);
            model_truncate(&m, survive);
            check_full(log, &m);
            crashes++;
        } else if (op < 96) { /* clean restart */
            partition_log_close(log);
            CU_ASSERT_EQUAL_FATAL(partition_log_open(dir, &cfg, m.end, true, &log), LOG_OK);
            check_full(log, &m);
            reopens++;
        } else { /* new segment size and index interval */
            cfg.segment_bytes = 500 + rnd(8000);
            int32_t intervals[] = {0, 64, 512, 4096};
            cfg.index_interval_bytes = intervals[rnd(4)];
            partition_log_set_config(log, &cfg);
        }
        partition_log_set_high_watermark(log, m.end);
        CU_ASSERT_EQUAL_FATAL(partition_log_start_offset(log), m.start);
        CU_ASSERT_EQUAL_FATAL(partition_log_end_offset(log), m.end);
        if (m.end > m.start) {
            int64_t off = m.start + rnd((uint32_t)(m.end - m.start));
            int64_t max_offset = off + 1 + rnd((uint32_t)(m.end - off));
            check_read(log, &m, off, 1 + rnd(6000), max_offset);
            check_collect(log, &m, off, max_offset);
        }
        if (step % 200 == 0)
            check_full(log, &m);
    }
    check_full(log, &m);
    printf("\n    model: seed %llu, %d steps, %d crashes, %d restarts, %d truncations, "
           "%d segments retained away, %d refused, %d replays, up to %d aborted txns, "
           "end offset %lld\n",
           (unsigned long long)seed, steps, crashes, reopens, truncations, retained, refused,
           replays, most_txns, (long long)m.end);
    CU_ASSERT(crashes > 10);
    CU_ASSERT(replays > 10);
    CU_ASSERT(most_txns > 5);
    partition_log_close(log);
    model_reset(&m, 0);
    free(m.b);
    free(m.txns);
    free(buf);
    log_test_rmrf(dir);
    free(dir);
}

void log_test_add_model(void)
{
    CU_pSuite s = CU_add_suite("model", NULL, NULL);
    CU_add_test(s, "randomized operations against an in-memory model", test_model);
}
