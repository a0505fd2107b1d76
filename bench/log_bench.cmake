# Partition log benchmark (run it from a Release build). It builds its
# batches with the unit tests' RecordBatch v2 helper.
add_executable(log_bench ${CMAKE_CURRENT_LIST_DIR}/log_bench.c
                         ${CMAKE_SOURCE_DIR}/tests/unit/log_test_batch.c)
target_include_directories(log_bench PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
target_link_libraries(log_bench PRIVATE vltava_log vltava_util)
