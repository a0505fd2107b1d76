# group_bench: consumer-group benchmarks on librdkafka (bench/README.md,
# "Consumer groups"; bench/run-group-bench.sh runs them on three brokers).
pkg_check_modules(GROUP_BENCH_RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
add_executable(group_bench ${CMAKE_CURRENT_LIST_DIR}/group_bench.c)
target_link_libraries(group_bench PRIVATE vltava_util PkgConfig::GROUP_BENCH_RDKAFKA Threads::Threads)
