/* Partition log benchmark: appends then reads back `--mb` MiB of 1 KiB and
 * 16 KiB RecordBatch v2 batches through partition_log, and in the same run
 * and directory a plain write() loop and a plain read() loop of the same
 * sizes, printing MB/s, batches/s and each ratio.
 *
 * Fairness: appends and plain writes both go to fresh files without fsync
 * (page cache), alternating which goes first. Reads run right after, so
 * both read from the page cache (warm), and the plain read() loop reads the
 * log's own segment file: on this VM the placement of page-cache pages
 * alone moves read throughput by up to 1.5x between two files written the
 * same way. Both read in 1 MiB units (a Fetch's default partition budget):
 * partition_log_read(max_bytes = 1 MiB) then pread of each returned range,
 * against read() of 1 MiB. A per-batch read (max_bytes = one batch against
 * read() of one batch) is printed too, without a goal. Each figure is the
 * best of --rounds rounds (default 4).
 *
 * Usage: log_bench [--dir DIR] [--mb N] [--rounds N] */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log_test.h"
#include "partition_log.h"

#define READ_UNIT (1 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "log_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A batch of about `target` bytes: records of ~1000 bytes (one smaller
 * record for 1 KiB). */
static uint8_t *make_batch(size_t target, size_t *len)
{
    int records = target >= 4096 ? (int)(target / 1024) : 1;
    size_t value = target / (size_t)records - 80;
    uint8_t *b = NULL;
    for (int tries = 0; tries < 64; tries++) {
        free(b);
        b = log_test_batch(records, value, 1700000000000LL, 42, len);
        if (*len == target)
            break;
        if (*len > target)
            value -= (*len - target + (size_t)records - 1) / (size_t)records;
        else
            value += (target - *len) / (size_t)records ? (target - *len) / (size_t)records : 1;
    }
    return b;
}

typedef struct result {
    double append_s, write_s, log_read_s, plain_read_s, log_read1_s, plain_read1_s;
} result_t;

static double min_d(double a, double b)
{
    return a < b ? a : b;
}

static void plain_write(const char *plain, const uint8_t *batch, size_t len, long n, result_t *best)
{
    int fd = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(plain);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (write(fd, batch, len) != (ssize_t)len)
            die("write");
    best->write_s = min_d(best->write_s, now_s() - t0);
    close(fd);
}

static partition_log_t *log_append(const char *logdir, uint8_t *batch, size_t len, long n,
                                   result_t *best)
{
    log_config_t cfg;
    log_config_defaults(&cfg);
    partition_log_t *log;
    if (partition_log_open(logdir, &cfg, 0, true, &log) != LOG_OK)
        die("partition_log_open");
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        log_append_info_t info;
        log_err_t err = partition_log_append(log, batch, len, 1, 1700000000000LL, &info);
        if (err != LOG_OK) {
            fprintf(stderr, "append: %s\n", log_err_str(err));
            exit(1);
        }
    }
    best->append_s = min_d(best->append_s, now_s() - t0);
    return log;
}

static void run_round(const char *dir, uint8_t *batch, size_t len, long n, int round,
                      result_t *best)
{
    char logdir[8192], plain[8192];
    snprintf(logdir, sizeof(logdir), "%s/bench-%zu-0", dir, len);
    snprintf(plain, sizeof(plain), "%s/plain-%zu.dat", dir, len);
    log_test_rmrf(logdir);
    unlink(plain);

    /* The file written second reads measurably faster from the page cache
     * on this machine, so the write order alternates between rounds. */
    partition_log_t *log = NULL;
    for (int k = 0; k < 2; k++) {
        if ((k == 0) == (round % 2 == 0)) {
            plain_write(plain, batch, len, n, best);
        } else {
            log = log_append(logdir, batch, len, n, best);
        }
    }
    int64_t end = partition_log_end_offset(log);

    uint8_t *buf = malloc(2 * READ_UNIT);
    /* The plain reads read the log's own segment file (one segment: 1 GiB
     * segments), so both sides read the very same page-cache pages. */
    char segment[8300];
    snprintf(segment, sizeof(segment), "%s/%020d.log", logdir, 0);
    int fd = open(segment, O_RDONLY);
    if (fd < 0)
        die(segment);
    /* Alternate plain and log reads twice so neither always goes first. */
    for (int pass = 0; pass < 2; pass++) {
        /* Plain read() loop, 1 MiB at a time. */
        lseek(fd, 0, SEEK_SET);
        double t0 = now_s();
        while (read(fd, buf, READ_UNIT) > 0)
            ;
        best->plain_read_s = min_d(best->plain_read_s, now_s() - t0);

        /* Log reads, 1 MiB at a time, each range pread into the buffer. */
        t0 = now_s();
        long bytes = 0;
        for (int64_t off = 0; off < end;) {
            log_read_t rd;
            if (partition_log_read(log, off, READ_UNIT, end, &rd) != LOG_OK || rd.nranges == 0)
                die("partition_log_read");
            for (int r = 0; r < rd.nranges; r++) {
                if (pread(rd.ranges[r].fd, buf, (size_t)rd.ranges[r].length,
                          rd.ranges[r].position) != rd.ranges[r].length)
                    die("pread");
                bytes += (long)rd.ranges[r].length;
            }
            off = rd.next_offset;
            partition_log_read_release(&rd);
        }
        best->log_read_s = min_d(best->log_read_s, now_s() - t0);
        if (bytes != (long)len * n) {
            fprintf(stderr, "log read %ld bytes, expected %ld\n", bytes, (long)len * n);
            exit(1);
        }
    }

    /* Per-batch reads: one batch per call on both sides. */
    lseek(fd, 0, SEEK_SET);
    double t0 = now_s();
    while (read(fd, buf, len) > 0)
        ;
    best->plain_read1_s = min_d(best->plain_read1_s, now_s() - t0);
    close(fd);
    t0 = now_s();
    for (int64_t off = 0; off < end;) {
        log_read_t rd;
        if (partition_log_read(log, off, 1, end, &rd) != LOG_OK || rd.nranges != 1)
            die("partition_log_read");
        if (pread(rd.ranges[0].fd, buf, (size_t)rd.ranges[0].length, rd.ranges[0].position) !=
            rd.ranges[0].length)
            die("pread");
        off = rd.next_offset;
        partition_log_read_release(&rd);
    }
    best->log_read1_s = min_d(best->log_read1_s, now_s() - t0);
    free(buf);
    partition_log_close(log);
    log_test_rmrf(logdir);
    unlink(plain);
}

static void report(size_t len, long n, const result_t *r)
{
    double mb = (double)len * (double)n / 1e6;
    printf("batch %zu B x %ld (%.0f MB)\n", len, n, mb);
    printf("  append        %8.0f MB/s %10.0f batches/s\n", mb / r->append_s, n / r->append_s);
    printf("  plain write   %8.0f MB/s %10.0f batches/s   append/write  %.2f\n", mb / r->write_s,
           n / r->write_s, r->write_s / r->append_s);
    printf("  log read      %8.0f MB/s %10.0f batches/s   (1 MiB reads, page cache)\n",
           mb / r->log_read_s, n / r->log_read_s);
    printf("  plain read    %8.0f MB/s %10.0f batches/s   read/plain    %.2f\n",
           mb / r->plain_read_s, n / r->plain_read_s, r->plain_read_s / r->log_read_s);
    printf("  log read/1    %8.0f MB/s %10.0f batches/s   (one batch per read)\n",
           mb / r->log_read1_s, n / r->log_read1_s);
    printf("  plain read/1  %8.0f MB/s %10.0f batches/s   read/plain    %.2f\n",
           mb / r->plain_read1_s, n / r->plain_read1_s, r->plain_read1_s / r->log_read1_s);
}

int main(int argc, char **argv)
{
    const char *dir = ".";
    long mb = 256;
    int rounds = 4;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
            mb = atol(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--mb N] [--rounds N]\n", argv[0]);
            return 2;
        }
    }
    if (mb <= 0 || rounds <= 0) {
        fprintf(stderr, "log_bench: --mb and --rounds must be positive\n");
        return 2;
    }
    char work[4096];
    snprintf(work, sizeof(work), "%s/log-bench-XXXXXX", dir);
    if (mkdtemp(work) == NULL)
        die(work);
    printf("log_bench: %ld MiB per batch size, best of %d rounds, in %s\n", mb, rounds, work);
    size_t sizes[] = {1024, 16384};
    for (size_t s = 0; s < 2; s++) {
        size_t len;
        uint8_t *batch = make_batch(sizes[s], &len);
        long n = (long)(mb * 1048576 / (long)len);
        result_t best = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
        for (int r = 0; r < rounds; r++)
            run_round(work, batch, len, n, r, &best);
        report(len, n, &best);
        free(batch);
    }
    log_test_rmrf(work);
    return 0;
}
