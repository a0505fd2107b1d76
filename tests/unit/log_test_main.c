/* test_log: the partition log suites. */
#include <CUnit/Basic.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_test.h"
#include "unit_run.h"
#include "vlog.h"

char *log_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/vltava-log-test-XXXXXX", base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    if (dir == NULL)
        abort();
    char *copy = malloc(strlen(dir) + 1);
    strcpy(copy, dir);
    return copy;
}

static int rmrf_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void log_test_rmrf(const char *path)
{
    nftw(path, rmrf_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    vlog_set_level(getenv("VLTAVA_TEST_VERBOSE") ? VLOG_DEBUG : VLOG_ERROR);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    log_test_add_crc();
    log_test_add_partition();
    log_test_add_recovery();
    log_test_add_model();
    log_test_add_manager();
    return unit_run_registered();
}
