# bench_rdk: what the librdkafka benchmarks share (bench_rdk.h): loadgen and
# group_bench link it.
pkg_check_modules(BENCH_RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
add_library(bench_rdk STATIC ${CMAKE_CURRENT_LIST_DIR}/bench_rdk.c)
target_include_directories(bench_rdk PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(bench_rdk PUBLIC PkgConfig::BENCH_RDKAFKA)
