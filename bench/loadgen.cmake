# loadgen: producer/consumer load generator on librdkafka (bench/README.md,
# "Producer/consumer load"; bench/run-loadgen.sh runs it against a broker).
pkg_check_modules(LOADGEN_RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
add_executable(loadgen ${CMAKE_CURRENT_LIST_DIR}/loadgen.c)
target_link_libraries(loadgen PRIVATE vltava_util PkgConfig::LOADGEN_RDKAFKA Threads::Threads)
