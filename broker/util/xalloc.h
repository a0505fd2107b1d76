/* Allocation that never returns NULL: out of memory aborts the process.
 * Every bound on input (frame size, queue depth) is enforced before
 * allocating, so OOM here means the machine is exhausted, not that a peer
 * asked for too much. */
#ifndef VLTAVA_XALLOC_H
#define VLTAVA_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* The x* allocators' end when memory is out: a message and abort(). For
 * an allocation a library made and reported failed. */
void xalloc_oom(size_t size) __attribute__((noreturn));
/* printf into a fresh allocation owned by the caller. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
