# loadgen: producer/consumer load generator on librdkafka (bench/README.md,
# "Producer/consumer load"; bench/run-loadgen.sh runs it against a broker).
add_executable(loadgen ${CMAKE_CURRENT_LIST_DIR}/loadgen.c)
target_link_libraries(loadgen PRIVATE bench_rdk vltava_util Threads::Threads)
