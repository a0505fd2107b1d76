/* The shared end of every unit-test executable's main(): runs the suites
 * registered in the CUnit registry and frees it. */
#ifndef VLTAVA_UNIT_RUN_H
#define VLTAVA_UNIT_RUN_H

#include <CUnit/Basic.h>
#include <stdlib.h>

/* Returns the process exit status: EXIT_SUCCESS only when no assertion and
 * no test failed. */
static inline int unit_run_registered(void)
{
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
