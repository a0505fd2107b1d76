# The handlers' pure helpers are compiled in directly (vltava_api would pull
# in the whole broker for functions that need none of it); the replica
# manager is tested through its library over a real log manager.
vltava_unit_test(test_api
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_main.c ${CMAKE_CURRENT_LIST_DIR}/api_validate_test.c
          ${CMAKE_CURRENT_LIST_DIR}/api_replica_test.c
          ${CMAKE_SOURCE_DIR}/broker/api/api_validate.c
  LIBS vltava_replica vltava_coordinator vltava_log vltava_kafka vltava_util)
target_include_directories(test_api PRIVATE ${CMAKE_SOURCE_DIR}/broker/api)
