# Builds and runs tests/package/consumer against tsnn. MODE=install installs the tsnn build tree
# into WORK/prefix first and lets the consumer find_package(tsnn COMPONENTS extras);
# MODE=install_without_stb does the same but hides stb_image_write from the consumer, which must
# then find tsnn without tsnn::extras, and fail when it asks for the extras component;
# MODE=subdirectory has the consumer add_subdirectory() the source tree, with TSNN_USE_ZLIB=OFF.
# EXTRAS is whether the tsnn build has tsnn::extras, ZLIB its TSNN_USE_ZLIB.
file(REMOVE_RECURSE ${WORK})
set(consumer_args)
if(MODE MATCHES "^install")
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${TSNN_BINARY} --prefix ${WORK}/prefix
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "installing tsnn failed (${rc})")
  endif()
  if(NOT EXISTS ${WORK}/prefix/share/cmake/tsnn/tsnnConfig.cmake)
    message(FATAL_ERROR "install tree lacks share/cmake/tsnn/tsnnConfig.cmake")
  endif()
  list(APPEND consumer_args -DCMAKE_PREFIX_PATH=${WORK}/prefix)
  set(expected_zlib ${ZLIB})
else()
  list(APPEND consumer_args -DTSNN_SOURCE_DIR=${TSNN_SOURCE} -DTSNN_USE_ZLIB=OFF)
  set(expected_zlib OFF)
endif()
if(expected_zlib)
  set(expected_zlib "on")
else()
  set(expected_zlib "off")
endif()

if(MODE STREQUAL "install_without_stb")
  # A directory without stb/stb_image_write.h stands for a machine without libstb-dev.
  file(MAKE_DIRECTORY ${WORK}/no-stb)
  list(APPEND consumer_args -DTSNN_STB_INCLUDE_DIR=${WORK}/no-stb)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/consumer
                          -B ${WORK}/build-required ${consumer_args}
                          -DTSNN_CONSUMER_COMPONENTS=extras
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT "${out}${err}" MATCHES "libstb-dev")
    message(FATAL_ERROR "find_package(tsnn COMPONENTS extras) without stb should fail naming "
                        "libstb-dev (${rc}):\n${out}${err}")
  endif()
  list(APPEND consumer_args -DTSNN_CONSUMER_EXPECT_EXTRAS=OFF)
elseif(MODE STREQUAL "install" AND EXTRAS)
  list(APPEND consumer_args -DTSNN_CONSUMER_COMPONENTS=extras -DTSNN_CONSUMER_EXPECT_EXTRAS=ON)
elseif(EXTRAS)
  list(APPEND consumer_args -DTSNN_CONSUMER_EXPECT_EXTRAS=ON)
endif()

execute_process(COMMAND ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/consumer -B ${WORK}/build
                        -DCMAKE_BUILD_TYPE=Release ${consumer_args}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/build RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the consumer failed (${rc})")
endif()
execute_process(COMMAND ${WORK}/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "tsnn 0\\." OR NOT out MATCHES "zlib ${expected_zlib}\n")
  message(FATAL_ERROR
    "the consumer failed (${rc}) or has zlib other than ${expected_zlib}: ${out}")
endif()
if(EXISTS ${WORK}/build/consumer_extras)
  execute_process(COMMAND ${WORK}/build/consumer_extras ${WORK} RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out)
  message(STATUS "${out}")
  if(NOT rc EQUAL 0 OR NOT out MATCHES "tsnn extras: ok")
    message(FATAL_ERROR "the extras consumer failed (${rc}): ${out}")
  endif()
elseif(EXTRAS AND NOT MODE STREQUAL "install_without_stb")
  message(FATAL_ERROR "the extras consumer was not built")
endif()
