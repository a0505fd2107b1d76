/* test_txn: the transaction coordinator's pure parts: the __transaction_state
 * record schemas and the transaction state machine. */
#include <CUnit/Basic.h>
#include <stdlib.h>

#include "unit_run.h"
#include "vlog.h"

void txn_records_suite(void);
void txn_meta_suite(void);

int main(void)
{
    vlog_set_level(getenv("VLTAVA_TEST_VERBOSE") ? VLOG_DEBUG : VLOG_ERROR);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    txn_records_suite();
    txn_meta_suite();
    return unit_run_registered();
}
