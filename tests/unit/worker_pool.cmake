# The worker pool's CUnit suite (completions on the loop, ordering, stop,
# the queue bound).
vltava_unit_test(test_worker_pool
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/worker_pool_test.c
  LIBS vltava_worker_pool vltava_util)
