/* test_group: the __consumer_offsets record schemas and the RecordBatch v2
 * builder and iterator. */
#include <CUnit/Basic.h>
#include <stdlib.h>

#include "unit_run.h"
#include "vlog.h"

void group_records_suite(void);
void record_batch_suite(void);
void group_partition_suite(void);

int main(void)
{
    vlog_set_level(getenv("VLTAVA_TEST_VERBOSE") ? VLOG_DEBUG : VLOG_ERROR);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    group_records_suite();
    record_batch_suite();
    group_partition_suite();
    return unit_run_registered();
}
