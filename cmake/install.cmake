# The embeddable C++ library (FASTSPEC_CPP_LIBRARY, default ON except in pip builds, which ship
# only the Python extension): libfastspec.so and libfastspec.a (the same objects, fastspec_objs),
# the public headers (cpp/include/fastspec: engine.h, tokenizer.h, options.h, status.h, ...), the
# benchmark binary and a CMake package, so that an application does
#   find_package(fastspec 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE fastspec::fastspec)          # or fastspec::fastspec_static
# after  cmake -S . -B build -DFASTSPEC_CUDA=OFF && cmake --build build && cmake --install build --prefix P
# (and -DCMAKE_PREFIX_PATH=P for the application). No Python and no PyTorch anywhere in it.
if(SKBUILD)
  set(_fs_lib_default OFF)
else()
  set(_fs_lib_default ON)
endif()
option(FASTSPEC_CPP_LIBRARY "Build libfastspec.so and install the C++ library, headers and CMake package"
       ${_fs_lib_default})
if(NOT FASTSPEC_CPP_LIBRARY)
  return()
endif()

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

add_library(fastspec_shared SHARED $<TARGET_OBJECTS:fastspec_objs>)
target_include_directories(fastspec_shared PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/cpp/include>
                                                  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(fastspec_shared PUBLIC Threads::Threads)
set_target_properties(fastspec_shared PROPERTIES OUTPUT_NAME fastspec EXPORT_NAME fastspec
                      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
set_target_properties(fastspec_core PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
  "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/cpp/include>;$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
add_library(fastspec::fastspec ALIAS fastspec_shared)
add_library(fastspec::fastspec_static ALIAS fastspec_core)

install(TARGETS fastspec_shared fastspec_core EXPORT fastspecTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/cpp/include/fastspec DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS fastspec-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(_fs_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/fastspec)
install(EXPORT fastspecTargets NAMESPACE fastspec:: DESTINATION ${_fs_cmake_dir} FILE fastspecTargets.cmake)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fastspecConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fastspecConfig.cmake INSTALL_DESTINATION ${_fs_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fastspecConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fastspecConfig.cmake ${PROJECT_BINARY_DIR}/fastspecConfigVersion.cmake
        DESTINATION ${_fs_cmake_dir})
