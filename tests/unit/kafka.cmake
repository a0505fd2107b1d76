vltava_unit_test(test_kafka
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kafka_main.c ${CMAKE_CURRENT_LIST_DIR}/kafka_codec_test.c
          ${CMAKE_CURRENT_LIST_DIR}/kafka_net_test.c
  LIBS vltava_net vltava_kafka vltava_util)
