# The daemon's configuration, compiled from broker/config.c as the daemon is.
vltava_unit_test(test_config
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_test.c ${CMAKE_SOURCE_DIR}/broker/config.c
  LIBS vltava_log vltava_kafka vltava_util)
target_include_directories(test_config PRIVATE ${CMAKE_SOURCE_DIR}/broker
                                               ${CMAKE_SOURCE_DIR}/broker/group)
