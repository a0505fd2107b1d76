# The metrics registry and the text exposition writer (broker/metrics), which
# need nothing of the broker's state.
vltava_unit_test(test_metrics
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/metrics_test.c
  LIBS vltava_metrics vltava_kafka vltava_util m)

# The endpoint's loop glue on a real socket (no broker state: the endpoint
# runs without sources).
vltava_unit_test(test_metrics_endpoint
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/metrics_endpoint_test.c
  LIBS vltava_metrics_endpoint vltava_util ev)
