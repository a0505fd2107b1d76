/* test_api: the API handlers' pure helpers and the replica manager. */
#include <CUnit/Basic.h>
#include <stdlib.h>

#include "unit_run.h"

void api_validate_suite(void);
void api_replica_suite(void);

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    api_validate_suite();
    api_replica_suite();
    return unit_run_registered();
}
