# FASTSPEC_FUZZ=ON: libFuzzer harnesses for the model-file parsers (tests/fuzz/fuzz_*.cpp), built
# with clang and -fsanitize=fuzzer,address,undefined (UBSan reports abort, so they are crashes).
# Needs clang++ and libFuzzer (Debian: apt-get install clang libclang-rt-14-dev). Only the io
# sources (and the tensor/dequantization code ModelFile links) are built instrumented:
#   cmake -S . -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DFASTSPEC_CUDA=OFF -DFASTSPEC_FUZZ=ON
#   cmake --build build/fuzz --target fastspec_fuzz
#   build/fuzz/fuzz_gguf -dict=tests/fuzz/gguf.dict CORPUS_DIR
# tests/test_fuzz_campaign.py builds these and runs a bounded campaign per harness.
option(FASTSPEC_FUZZ "Build the libFuzzer harnesses in tests/fuzz (clang only)" OFF)
if(FASTSPEC_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FASTSPEC_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  set(_fs_fuzz_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
  file(GLOB _fs_fuzz_io ${CMAKE_CURRENT_SOURCE_DIR}/cpp/src/io/*.cpp)
  file(GLOB _fs_fuzz_dequant ${CMAKE_CURRENT_SOURCE_DIR}/cpp/src/backend/cpu/dequant*.cpp)
  add_library(fastspec_fuzz_io STATIC ${_fs_fuzz_io} ${_fs_fuzz_dequant}
              ${CMAKE_CURRENT_SOURCE_DIR}/cpp/src/tensor.cpp)
  target_include_directories(fastspec_fuzz_io
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/cpp/include ${CMAKE_CURRENT_SOURCE_DIR}/cpp/src)
  target_compile_options(fastspec_fuzz_io PRIVATE ${FASTSPEC_CXX_FLAGS} ${_fs_fuzz_san} -fsanitize=fuzzer-no-link)
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    target_compile_definitions(fastspec_fuzz_io PRIVATE FASTSPEC_NO_X86_SIMD)
  endif()
  add_custom_target(fastspec_fuzz)
  foreach(_h gguf safetensors json config_hf)
    add_executable(fuzz_${_h} ${CMAKE_CURRENT_SOURCE_DIR}/tests/fuzz/fuzz_${_h}.cpp)
    target_compile_options(fuzz_${_h} PRIVATE ${FASTSPEC_CXX_FLAGS} ${_fs_fuzz_san} -fsanitize=fuzzer)
    target_link_options(fuzz_${_h} PRIVATE ${_fs_fuzz_san} -fsanitize=fuzzer)
    target_link_libraries(fuzz_${_h} PRIVATE fastspec_fuzz_io Threads::Threads)
    add_dependencies(fastspec_fuzz fuzz_${_h})
  endforeach()
endif()
