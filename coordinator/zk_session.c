/* Fast restart: ending the ZooKeeper session of this broker's previous
 * process (issue 10 §2).
 *
 * A broker killed with kill -9 leaves its session on the server until the
 * session timeout: its ephemeral registration /brokers/ids/<id> (and
 * /controller if it held the office) stays, the controller keeps it as the
 * leader of its partitions, and a restarted process could only wait for
 * the expiry. So after each registration the broker keeps its session's
 * client id (session id and password, zoo_client_id) in the session file
 * of its log directory, and removes the file when it stops cleanly. At
 * start-up, holding the log directory's lock (taken before the coordinator
 * starts: the lock proves that the process which wrote the file is dead),
 * the broker opens a handle with that client id. When the server accepts
 * it (the session was still alive), the broker deletes the session's
 * ephemeral znodes and closes it at once; when the server reports it
 * expired there is nothing to do. Either way the new process then opens a
 * fresh session and registers as usual, without waiting.
 *
 * Why end the old session rather than keep it: the new process has none of
 * the old one's memory (high watermarks, producer state, the elections it
 * acted on), so the restart is a leave and a join, through the paths the
 * controller already uses for brokers that go and come. The controller
 * also recognises a restart it did not see as a leave: a leader whose
 * registration is newer than its leadership (coord_leader_restarted).
 *
 * The same ending is used after check_session declared a session lost
 * that the server may still hold (disconnected past its timeout): once
 * connected again, a helper thread ends the old session so that its
 * ephemeral registration does not linger for another timeout and block
 * the re-registration.
 *
 * The file is one line, "vltava-zookeeper-session 1 <16 hex> <32 hex>\n",
 * mode 0600 (the password lets anyone resume the session), written to a
 * temporary file, fsynced and renamed over the old one. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord_state.h"
#include "vlog.h"
#include "xalloc.h"

#define SESSION_FILE_NAME  "zookeeper-session"
#define SESSION_FILE_MAGIC "vltava-zookeeper-session 1 "
/* The longest wait for the server's answer on the previous session. */
#define PREVIOUS_SESSION_WAIT_MS 2000

/* ---- the file's line (pure) ---- */

static const char hex_digits[] = "0123456789abcdef";

size_t coord_session_line_encode(int64_t session_id, const char passwd[16],
                                 char out[COORD_SESSION_LINE_BYTES + 1])
{
    size_t n = sizeof(SESSION_FILE_MAGIC) - 1;
    memcpy(out, SESSION_FILE_MAGIC, n);
    for (int shift = 60; shift >= 0; shift -= 4)
        out[n++] = hex_digits[((uint64_t)session_id >> shift) & 0xf];
    out[n++] = ' ';
    for (int i = 0; i < 16; i++) {
        out[n++] = hex_digits[(uint8_t)passwd[i] >> 4];
        out[n++] = hex_digits[(uint8_t)passwd[i] & 0xf];
    }
    out[n++] = '\n';
    out[n] = '\0';
    assert(n == COORD_SESSION_LINE_BYTES);
    return n;
}

static int hex_value(char ch)
{
    const char *at = ch ? strchr(hex_digits, ch) : NULL;
    return at ? (int)(at - hex_digits) : -1;
}

int coord_session_line_decode(const char *buf, size_t len, int64_t *session_id, char passwd[16],
                              char *err, size_t err_size)
{
    const size_t magic = sizeof(SESSION_FILE_MAGIC) - 1;
    if (len != COORD_SESSION_LINE_BYTES) {
        snprintf(err, err_size, "%zu bytes, not %d", len, COORD_SESSION_LINE_BYTES);
        return -1;
    }
    if (memcmp(buf, SESSION_FILE_MAGIC, magic) != 0 || buf[magic + 16] != ' ' ||
        buf[len - 1] != '\n') {
        snprintf(err, err_size, "not a session file line");
        return -1;
    }
    uint64_t id = 0;
    for (size_t i = 0; i < 16; i++) {
        int v = hex_value(buf[magic + i]);
        if (v < 0) {
            snprintf(err, err_size, "session id is not hexadecimal");
            return -1;
        }
        id = id << 4 | (uint64_t)v;
    }
    const char *pw = buf + magic + 17;
    for (size_t i = 0; i < 16; i++) {
        int hi = hex_value(pw[2 * i]), lo = hex_value(pw[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(err, err_size, "password is not hexadecimal");
            return -1;
        }
        passwd[i] = (char)(hi << 4 | lo);
    }
    if (id == 0) {
        snprintf(err, err_size, "session id 0");
        return -1;
    }
    *session_id = (int64_t)id;
    return 0;
}

/* ---- the file ---- */

char *zk_session_file_path(const char *dir)
{
    return dir && dir[0] ? xasprintf("%s/%s", dir, SESSION_FILE_NAME) : NULL;
}

/* Writes the whole buffer; -1 with errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync of the directory holding path, so that a rename survives a crash. */
static int sync_parent_dir(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    errno = saved;
    return rc;
}

int zk_session_file_save(const char *path, const clientid_t *id)
{
    assert(path != NULL && id->client_id != 0);
    char line[COORD_SESSION_LINE_BYTES + 1];
    size_t len = coord_session_line_encode(id->client_id, id->passwd, line);
    char *tmp = xasprintf("%s.tmp", path);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, line, len) != 0 || fsync(fd) != 0) {
        VLOG_WARN("coord", "writing %s: %s", tmp, strerror(errno));
    } else if (rename(tmp, path) != 0) {
        VLOG_WARN("coord", "renaming %s to %s: %s", tmp, path, strerror(errno));
    } else {
        if (sync_parent_dir(path) != 0)
            VLOG_WARN("coord", "fsync of the directory of %s: %s", path, strerror(errno));
        rc = 0;
    }
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

void zk_session_file_remove(const char *path)
{
    if (path && unlink(path) != 0 && errno != ENOENT)
        VLOG_WARN("coord", "removing %s: %s", path, strerror(errno));
}

/* Reads the client id from the file: 1 when found, 0 when there is no file
 * or it is unusable (logged; the caller removes it), -1 on a read error. */
static int session_file_load(const char *path, clientid_t *id)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        VLOG_WARN("coord", "opening %s: %s", path, strerror(errno));
        return -1;
    }
    /* One byte more than a line, to tell a longer file. */
    char buf[COORD_SESSION_LINE_BYTES + 1];
    size_t len = 0;
    int result = 1;
    while (len < sizeof(buf)) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            VLOG_WARN("coord", "reading %s: %s", path, strerror(errno));
            result = -1;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (result < 0)
        return -1;
    char err[96];
    memset(id, 0, sizeof(*id));
    if (coord_session_line_decode(buf, len, &id->client_id, id->passwd, err, sizeof(err)) != 0) {
        VLOG_WARN("coord", "session file %s is unusable (%s); ignored", path, err);
        return 0;
    }
    return 1;
}

/* ---- ending a session ---- */

/* What the probe handle's watcher saw, for the thread that waits. */
typedef struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int state; /* last session state, 0: none yet */
} probe_t;

static void probe_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    probe_t *p = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&p->mu);
    p->state = state;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

/* Deletes path when it is an ephemeral of the session `owner`. */
static void delete_if_owned(zhandle_t *zh, const char *path, int64_t owner)
{
    struct Stat st;
    if (zoo_exists(zh, path, 0, &st) == ZOK && st.ephemeralOwner == owner) {
        int rc = zoo_delete(zh, path, st.version);
        if (rc != ZOK && rc != ZNONODE)
            VLOG_WARN("coord", "deleting %s of session 0x%llx: %s", path, (unsigned long long)owner,
                      zerror(rc));
    }
}

zk_prev_session_t zk_end_session(const char *connect, const clientid_t *id, int timeout_ms,
                                 int32_t broker_id, int64_t deadline_ms)
{
    assert(connect != NULL && id->client_id != 0);
    probe_t p = {.state = 0};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p.cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p.mu, NULL);
    zk_prev_session_t outcome = ZK_PREV_SESSION_UNKNOWN;
    zhandle_t *zh = zookeeper_init(connect, probe_watcher, timeout_ms, id, &p, 0);
    if (!zh) {
        VLOG_WARN("coord", "zookeeper_init(%s) for session 0x%llx: %s", connect,
                  (unsigned long long)id->client_id, strerror(errno));
        goto out;
    }
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_mutex_lock(&p.mu);
    while (p.state != ZOO_CONNECTED_STATE && p.state != ZOO_EXPIRED_SESSION_STATE &&
           p.state != ZOO_AUTH_FAILED_STATE && coord_now_ms() < deadline_ms)
        pthread_cond_timedwait(&p.cond, &p.mu, &ts);
    int state = p.state;
    pthread_mutex_unlock(&p.mu);
    if (state == ZOO_EXPIRED_SESSION_STATE) {
        outcome = ZK_PREV_SESSION_EXPIRED;
    } else if (state == ZOO_CONNECTED_STATE && zoo_client_id(zh)->client_id == id->client_id) {
        /* Closing alone frees them too, once the server has processed the
         * close, which zookeeper_close does not wait for: deleting first
         * means they are gone when this returns. */
        char path[64];
        snprintf(path, sizeof(path), "/brokers/ids/%d", broker_id);
        delete_if_owned(zh, path, id->client_id);
        delete_if_owned(zh, "/controller", id->client_id);
        outcome = ZK_PREV_SESSION_CLOSED;
    }
    zookeeper_close(zh);
out:
    pthread_cond_destroy(&p.cond);
    pthread_mutex_destroy(&p.mu);
    return outcome;
}

zk_prev_session_t zk_end_previous_session(coordinator_t *c, const char *connect)
{
    if (!c->session_file)
        return ZK_PREV_SESSION_NONE;
    clientid_t id;
    int found = session_file_load(c->session_file, &id);
    if (found < 0)
        return ZK_PREV_SESSION_UNKNOWN;
    if (found == 0) {
        zk_session_file_remove(c->session_file); /* an unusable one, if any */
        return ZK_PREV_SESSION_NONE;
    }
    int64_t start = coord_now_ms();
    zk_prev_session_t outcome = zk_end_session(connect, &id, c->cfg.zk_session_timeout_ms,
                                               c->cfg.broker_id, start + PREVIOUS_SESSION_WAIT_MS);
    int64_t took = coord_now_ms() - start;
    switch (outcome) {
    case ZK_PREV_SESSION_CLOSED:
        VLOG_INFO("coord",
                  "closed the previous process's ZooKeeper session 0x%llx, still alive (%lld ms): "
                  "its registration is gone, a leave the controller acts on now",
                  (unsigned long long)id.client_id, (long long)took);
        break;
    case ZK_PREV_SESSION_EXPIRED:
        VLOG_INFO("coord", "the previous process's ZooKeeper session 0x%llx had expired",
                  (unsigned long long)id.client_id);
        break;
    default:
        VLOG_WARN("coord",
                  "could not end the previous process's ZooKeeper session 0x%llx within %lld ms; "
                  "its registration, if left, is waited out",
                  (unsigned long long)id.client_id, (long long)took);
        return outcome; /* the file stays for the next attempt */
    }
    zk_session_file_remove(c->session_file);
    return outcome;
}

/* ---- ending a lost session, off the loop ---- */

typedef struct reaper {
    coordinator_t *c; /* only its reaper_done, set last */
    char *connect;
    clientid_t id;
    int timeout_ms;
    int32_t broker_id;
} reaper_t;

static void *reaper_main(void *arg)
{
    reaper_t *r = arg;
    zk_prev_session_t outcome = zk_end_session(r->connect, &r->id, r->timeout_ms, r->broker_id,
                                               coord_now_ms() + PREVIOUS_SESSION_WAIT_MS);
    if (outcome == ZK_PREV_SESSION_CLOSED)
        VLOG_INFO("coord", "closed the lost ZooKeeper session 0x%llx, which the server still held",
                  (unsigned long long)r->id.client_id);
    atomic_store(&r->c->reaper_done, true);
    free(r->connect);
    free(r);
    return NULL;
}

void zk_reap_session(coordinator_t *c, const char *connect, const clientid_t *id)
{
    assert(id->client_id != 0);
    if (c->reaper_running && !atomic_load(&c->reaper_done)) {
        /* At most one; a second loss within its 2 s is rare enough to be
         * left to expire, rather than block the loop. */
        VLOG_WARN("coord", "session 0x%llx is left to expire: another is being closed",
                  (unsigned long long)id->client_id);
        return;
    }
    zk_reaper_join(c);
    reaper_t *r = xcalloc(1, sizeof(*r));
    r->c = c;
    r->connect = xstrdup(connect);
    r->id = *id;
    r->timeout_ms = c->cfg.zk_session_timeout_ms;
    r->broker_id = c->cfg.broker_id;
    atomic_store(&c->reaper_done, false);
    if (pthread_create(&c->reaper, NULL, reaper_main, r) != 0) {
        VLOG_WARN("coord", "cannot start a thread to close session 0x%llx; it will expire",
                  (unsigned long long)id->client_id);
        free(r->connect);
        free(r);
        return;
    }
    c->reaper_running = true;
}

void zk_reaper_join(coordinator_t *c)
{
    if (!c->reaper_running)
        return;
    pthread_join(c->reaper, NULL);
    c->reaper_running = false;
}
