vltava_unit_test(test_kafka
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kafka_main.c ${CMAKE_CURRENT_LIST_DIR}/kafka_codec_test.c
  LIBS vltava_kafka)
