# The daemon's configuration, compiled from broker/config.c as the daemon is.
# vltava_kafka: config.h holds the group settings, whose header names kafka_codec.h.
vltava_unit_test(test_config
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_test.c ${CMAKE_SOURCE_DIR}/broker/config.c
  LIBS vltava_log vltava_kafka vltava_util)
target_include_directories(test_config PRIVATE ${CMAKE_SOURCE_DIR}/broker)
