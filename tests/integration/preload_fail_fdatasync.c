/* LD_PRELOAD shim for test_storage_offline: fdatasync of a file whose
 * directory holds a file named ".fail-fdatasync" fails with EIO, as a disk
 * whose writeback failed reports it; every other call goes to the C
 * library's. Test-only: never linked into the broker. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TRIGGER_NAME ".fail-fdatasync"

static int (*real_fdatasync)(int);

static int triggered(int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (slash == NULL || (size_t)(slash - path) + 1 + sizeof(TRIGGER_NAME) > sizeof(path))
        return 0;
    strcpy(slash + 1, TRIGGER_NAME);
    return access(path, F_OK) == 0;
}

int fdatasync(int fd)
{
    if (triggered(fd)) {
        errno = EIO;
        return -1;
    }
    if (real_fdatasync == NULL)
        real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real_fdatasync(fd);
}
