# txn_bench: plain, idempotent and transactional producers in one run
# (bench/README.md, "Idempotent and transactional produce";
# bench/run-txn-bench.sh runs it against local brokers).
add_executable(txn_bench ${CMAKE_CURRENT_LIST_DIR}/txn_bench.c)
target_link_libraries(txn_bench PRIVATE bench_rdk vltava_util Threads::Threads)
