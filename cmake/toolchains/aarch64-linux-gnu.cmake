# Cross-compiling for aarch64 Linux with Debian's g++-aarch64-linux-gnu (apt-get install
# g++-aarch64-linux-gnu qemu-user); the binaries run here under qemu-aarch64 (tests/test_aarch64.py):
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DFASTSPEC_CUDA=OFF -DFASTSPEC_TESTS=ON
#   cmake --build build/aarch64 --target fastspec-test-qdot_paths fastspec-test-greedy_trace
#   qemu-aarch64 -L /usr/aarch64-linux-gnu build/aarch64/tests/cpp/fastspec-test-qdot_paths
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
