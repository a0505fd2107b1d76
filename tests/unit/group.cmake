# The group module's pure parts: __consumer_offsets record schemas and the
# RecordBatch v2 builder and iterator they travel in (checked against the
# real partition log's append validation). log_test_batch.c lends the log
# tests' temp directories and their independent batch encoder.
vltava_unit_test(test_group
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/group_main.c
          ${CMAKE_CURRENT_LIST_DIR}/group_records_test.c
          ${CMAKE_CURRENT_LIST_DIR}/record_batch_test.c
          ${CMAKE_CURRENT_LIST_DIR}/group_partition_test.c
          ${CMAKE_CURRENT_LIST_DIR}/log_test_batch.c
  LIBS vltava_group vltava_replica vltava_coordinator vltava_log vltava_kafka vltava_util)
# Transactional offset commits through the real group coordinator of one
# in-process broker (ZooKeeper, coordinator, replica manager, logs in a
# temporary directory), configured by broker/config.c as the daemon is.
vltava_unit_test(test_group_txn
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/group_txn_test.c ${CMAKE_SOURCE_DIR}/broker/config.c
  LIBS vltava_group vltava_replica vltava_coordinator vltava_log vltava_kafka vltava_util)
target_include_directories(test_group_txn PRIVATE ${CMAKE_SOURCE_DIR}/broker)
set_tests_properties(test_group_txn PROPERTIES
  ENVIRONMENT "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_LIST_DIR}/coord_lsan.supp")
