/* test_log: the partition log suites. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include "log_test.h"
#include "unit_run.h"
#include "vlog.h"

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
    log_test_add_txn();
    log_test_add_fd_cache();
    log_test_add_fsync();
    return unit_run_registered();
}
