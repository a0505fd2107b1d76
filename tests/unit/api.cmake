# The pure helpers are compiled in directly: linking vltava_api would pull in
# the whole broker (coordinator, ZooKeeper) for functions that need none of it.
vltava_unit_test(test_api
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_main.c ${CMAKE_CURRENT_LIST_DIR}/api_validate_test.c
          ${CMAKE_SOURCE_DIR}/broker/api/api_validate.c
  LIBS vltava_log vltava_kafka vltava_util)
target_include_directories(test_api PRIVATE ${CMAKE_SOURCE_DIR}/broker/api
                                            ${CMAKE_SOURCE_DIR}/broker/replica
                                            ${CMAKE_SOURCE_DIR}/coordinator)
