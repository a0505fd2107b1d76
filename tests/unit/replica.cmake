# The pure rules of replication (broker/replica/replica_logic.c) and the
# idempotent producer's state (producer_state.c), compiled in directly: they
# need neither the loop nor the RPC. producer_state.c allocates through
# vltava_util's xalloc.
vltava_unit_test(test_replica
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/replica_logic_test.c
          ${CMAKE_CURRENT_LIST_DIR}/producer_state_test.c
          ${CMAKE_CURRENT_LIST_DIR}/replica_throttle_test.c
          ${CMAKE_SOURCE_DIR}/broker/replica/replica_throttle.c
          ${CMAKE_SOURCE_DIR}/broker/replica/replica_logic.c
          ${CMAKE_SOURCE_DIR}/broker/replica/producer_state.c
  LIBS vltava_util)
target_include_directories(test_replica PRIVATE ${CMAKE_SOURCE_DIR}/broker/replica)
