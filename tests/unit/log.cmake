# The partition log's CUnit suites (crc32c, partition log, recovery,
# randomized model, log manager, transaction index and control batches,
# the segment descriptor cache, failed fsyncs).
vltava_unit_test(test_log
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/log_test_main.c
          ${CMAKE_CURRENT_LIST_DIR}/log_test_batch.c
          ${CMAKE_CURRENT_LIST_DIR}/log_crc_test.c
          ${CMAKE_CURRENT_LIST_DIR}/log_partition_test.c
          ${CMAKE_CURRENT_LIST_DIR}/log_recovery_test.c
          ${CMAKE_CURRENT_LIST_DIR}/log_model_test.c
          ${CMAKE_CURRENT_LIST_DIR}/log_manager_test.c
          ${CMAKE_CURRENT_LIST_DIR}/log_txn_test.c
          ${CMAKE_CURRENT_LIST_DIR}/log_fd_cache_test.c
          ${CMAKE_CURRENT_LIST_DIR}/log_fsync_test.c
  LIBS vltava_log vltava_util)
# log_fsync_test.c makes fdatasync fail on demand.
target_link_options(test_log PRIVATE -Wl,--wrap=fdatasync)
