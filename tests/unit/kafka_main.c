/* test_kafka: the codec, ApiVersions dispatch, the network layer and the
 * broker configuration. */
#include <CUnit/Basic.h>
#include <stdlib.h>

#include "unit_run.h"

void kafka_codec_suite(void);
void kafka_net_suite(void);

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    kafka_codec_suite();
    kafka_net_suite();
    return unit_run_registered();
}
