# The pure rules of replication (broker/replica/replica_logic.c), compiled in
# directly: they need neither the loop nor the RPC.
vltava_unit_test(test_replica
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/replica_logic_test.c
          ${CMAKE_SOURCE_DIR}/broker/replica/replica_logic.c)
target_include_directories(test_replica PRIVATE ${CMAKE_SOURCE_DIR}/broker/replica)
