# group_bench: consumer-group benchmarks on librdkafka (bench/README.md,
# "Consumer groups"; bench/run-group-bench.sh runs them on three brokers).
add_executable(group_bench ${CMAKE_CURRENT_LIST_DIR}/group_bench.c)
target_link_libraries(group_bench PRIVATE bench_rdk vltava_util Threads::Threads)
