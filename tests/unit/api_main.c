/* test_api: the API handlers' pure helpers and the replica manager. */
#include <CUnit/Basic.h>
#include <stdlib.h>

void api_validate_suite(void);
void api_replica_suite(void);

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    api_validate_suite();
    api_replica_suite();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
