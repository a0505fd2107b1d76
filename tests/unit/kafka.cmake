vltava_unit_test(test_kafka
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kafka_main.c ${CMAKE_CURRENT_LIST_DIR}/kafka_codec_test.c
          ${CMAKE_CURRENT_LIST_DIR}/kafka_net_test.c
  LIBS vltava_net vltava_kafka vltava_util)

# The dispatch table and ApiVersions through the real api_dispatch (which
# links the whole API layer and what it uses).
vltava_unit_test(test_kafka_api
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kafka_api_versions_test.c
  LIBS vltava_api vltava_net vltava_coordinator vltava_replica vltava_log vltava_kafka vltava_util)
