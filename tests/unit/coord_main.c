#include <CUnit/Basic.h>

#include "coord_test.h"
#include "unit_run.h"

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    coord_add_pure_suite();
    coord_add_reassign_suite();
    coord_add_election_suite();
    coord_add_shutdown_suite();
    coord_add_rpc_suite();
    coord_add_zk_suite();
    return unit_run_registered();
}
