/* test_kafka: the codec, ApiVersions dispatch, the network layer and the
 * broker configuration. */
#include <CUnit/Basic.h>
#include <stdlib.h>

void kafka_codec_suite(void);
void kafka_net_suite(void);

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    kafka_codec_suite();
    kafka_net_suite();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
