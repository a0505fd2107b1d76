# The consumer-group handlers against a fake group coordinator: the test
# defines the group_* functions and api_request_complete, so the handlers'
# sources are compiled in directly (vltava_api would bring the real
# coordinator and net).
vltava_unit_test(test_api_groups
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_groups_test.c ${CMAKE_SOURCE_DIR}/broker/api/api_group.c
          ${CMAKE_SOURCE_DIR}/broker/api/api_offsets.c
  LIBS vltava_replica vltava_coordinator vltava_log vltava_kafka vltava_util)
target_include_directories(test_api_groups PRIVATE ${CMAKE_SOURCE_DIR}/broker/api
                                                   ${CMAKE_SOURCE_DIR}/broker/group)
