# FASTSPEC_SANITIZE: a comma list of sanitizers for the whole build (core, extension, benchmark,
# C++ tests), e.g. -DFASTSPEC_SANITIZE=address,undefined (ASan + UBSan; the CI job's choice) or
# thread. Empty (default) = none. UBSan findings abort (-fno-sanitize-recover), so a report fails
# the run. The Python extension built this way needs the ASan runtime loaded first:
#   LD_PRELOAD=$(g++ -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 python ...
# (Python itself "leaks" at exit by design, so leak checks run in the C++ test binaries.)
# tests/test_cpp_sanitized.py does exactly this; see README "Sanitizers".
set(FASTSPEC_SANITIZE "" CACHE STRING "Sanitizers for the whole build, e.g. address,undefined (empty = none)")
if(FASTSPEC_SANITIZE)
  set(_fs_san -fsanitize=${FASTSPEC_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_fs_san};-g>")
  add_link_options(${_fs_san})
  message(STATUS "fastspec: sanitizers ${FASTSPEC_SANITIZE}")
endif()
