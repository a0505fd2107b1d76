# The coordinator's suites: pure logic (assignment, election, codecs), the
# inter-broker RPC channel (broker/rpc), and the coordinator against a real
# ZooKeeper (VLTAVA_TEST_ZK from tests/run.sh, or one it starts itself).
vltava_unit_test(test_coord
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/coord_main.c ${CMAKE_CURRENT_LIST_DIR}/coord_pure_test.c
          ${CMAKE_CURRENT_LIST_DIR}/coord_election_test.c
          ${CMAKE_CURRENT_LIST_DIR}/coord_zk_test.c ${CMAKE_CURRENT_LIST_DIR}/coord_rpc_test.c
          ${CMAKE_CURRENT_LIST_DIR}/coord_reassign_test.c
          ${CMAKE_CURRENT_LIST_DIR}/coord_shutdown_test.c
  LIBS vltava_coordinator vltava_rpc vltava_log vltava_kafka vltava_proto vltava_util)
target_compile_definitions(test_coord PRIVATE THREADED)
set_tests_properties(test_coord PROPERTIES
  ENVIRONMENT "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/coord_lsan.supp")
