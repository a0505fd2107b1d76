# The transaction coordinator's pure parts: __transaction_state record
# schemas and the transaction state machine.
vltava_unit_test(test_txn
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/txn_main.c
          ${CMAKE_CURRENT_LIST_DIR}/txn_records_test.c
          ${CMAKE_CURRENT_LIST_DIR}/txn_meta_test.c
  LIBS vltava_txn vltava_kafka vltava_util)
