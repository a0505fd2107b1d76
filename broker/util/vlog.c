#include "vlog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static _Atomic int vlog_level = VLOG_INFO;
static const char *const vlog_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void vlog_set_level(enum vlog_level level)
{
    vlog_level = level;
}

enum vlog_level vlog_get_level(void)
{
    return (enum vlog_level)vlog_level;
}

int vlog_level_parse(const char *name)
{
    for (int i = 0; i <= VLOG_DEBUG; i++)
        if (strcasecmp(name, vlog_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return VLOG_WARN;
    return -1;
}

void vlog_write(enum vlog_level level, const char *module, const char *fmt, ...)
{
    if ((int)level > vlog_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %-5s [%s] %s\n", when, ts.tv_nsec / 1000000, vlog_names[level],
            module, msg);
}
