# The CUDA backend (cuda/): built when FASTSPEC_CUDA is ON, or AUTO and nvcc is found.
# Only cuda/ includes CUDA headers; the rest of the core talks to it through cuda/cuda_backend.h.
set(FASTSPEC_WITH_CUDA OFF)
string(TOUPPER "${FASTSPEC_CUDA}" _fs_cuda)
if(_fs_cuda STREQUAL "ON" OR _fs_cuda STREQUAL "AUTO")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER)
    check_language(CUDA)
  endif()
  if(CMAKE_CUDA_COMPILER)
    set(FASTSPEC_WITH_CUDA ON)
  elseif(_fs_cuda STREQUAL "ON")
    message(FATAL_ERROR "FASTSPEC_CUDA=ON but no CUDA compiler (nvcc) was found; "
                        "set CUDACXX or use FASTSPEC_CUDA=AUTO|OFF")
  else()
    message(STATUS "fastspec: nvcc not found, building without the CUDA backend")
  endif()
elseif(NOT _fs_cuda STREQUAL "OFF")
  message(FATAL_ERROR "FASTSPEC_CUDA must be AUTO, ON or OFF (got '${FASTSPEC_CUDA}')")
endif()

if(FASTSPEC_WITH_CUDA)
  # GPU architectures, chosen for where fastspec runs (override with -DCMAKE_CUDA_ARCHITECTURES):
  #   75 Turing (T4; the oldest CUDA 13 supports)   80 Ampere A100      86 Ampere RTX 30xx / A10
  #   87 Jetson Orin (the edge target)             89 Ada (RTX 40xx, L4) 90 Hopper H100/H200
  # "-real" emits SASS only; the last entry also embeds PTX so newer GPUs can JIT it.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "75-real;80-real;86-real;87-real;89-real;90")
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  file(GLOB_RECURSE FASTSPEC_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cuda/*.cu)
  add_library(fastspec_cuda STATIC ${FASTSPEC_CUDA_SOURCES})
  target_include_directories(fastspec_cuda PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/cuda
                                            PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/cpp/src)
  target_link_libraries(fastspec_cuda PUBLIC fastspec_core CUDA::cudart_static)
  # No FMA contraction in device code either (same rounding as the CPU reference).
  target_compile_options(fastspec_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false>)
  set_target_properties(fastspec_cuda PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  message(STATUS "fastspec: CUDA backend ON (archs ${CMAKE_CUDA_ARCHITECTURES})")
endif()

# The GPU test/bench binary of the W4A16 kernel (tests/cuda/test_w4a16.cu; needs a GPU to run,
# compiles anywhere nvcc does). cuBLAS, when the toolkit has it, adds the f16 comparison.
if(FASTSPEC_WITH_CUDA AND FASTSPEC_TESTS)
  add_executable(fastspec-test-w4a16 ${CMAKE_CURRENT_SOURCE_DIR}/tests/cuda/test_w4a16.cu)
  target_link_libraries(fastspec-test-w4a16 PRIVATE fastspec_cuda)
  if(TARGET CUDA::cublas)
    target_link_libraries(fastspec-test-w4a16 PRIVATE CUDA::cublas)
    target_compile_definitions(fastspec-test-w4a16 PRIVATE FASTSPEC_HAVE_CUBLAS)
  endif()
endif()
