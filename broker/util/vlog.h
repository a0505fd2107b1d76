/* Leveled logging to stderr: "<ISO time> <LEVEL> [<module>] message".
 * Thread-safe (one fprintf per line). */
#ifndef VLTAVA_VLOG_H
#define VLTAVA_VLOG_H

enum vlog_level { VLOG_ERROR = 0, VLOG_WARN, VLOG_INFO, VLOG_DEBUG };

/* Messages above this level are dropped. Default VLOG_INFO. */
void vlog_set_level(enum vlog_level level);
enum vlog_level vlog_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 for anything else. */
int vlog_level_parse(const char *name);

void vlog_write(enum vlog_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define VLOG_ERR(mod, ...)  vlog_write(VLOG_ERROR, mod, __VA_ARGS__)
#define VLOG_WARN(mod, ...) vlog_write(VLOG_WARN, mod, __VA_ARGS__)
#define VLOG_INFO(mod, ...) vlog_write(VLOG_INFO, mod, __VA_ARGS__)
#define VLOG_DEBUG(mod, ...)                                                                       \
    do {                                                                                           \
        if (vlog_get_level() >= VLOG_DEBUG)                                                        \
            vlog_write(VLOG_DEBUG, mod, __VA_ARGS__);                                              \
    } while (0)

#endif
