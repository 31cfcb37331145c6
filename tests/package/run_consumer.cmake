# Builds and runs tests/package/consumer against tsnn. MODE=install installs the tsnn build tree
# into WORK/prefix first and lets the consumer find_package(tsnn); MODE=subdirectory has the
# consumer add_subdirectory() the source tree.
file(REMOVE_RECURSE ${WORK})
set(consumer_args)
if(MODE STREQUAL "install")
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${TSNN_BINARY} --prefix ${WORK}/prefix
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "installing tsnn failed (${rc})")
  endif()
  if(NOT EXISTS ${WORK}/prefix/share/cmake/tsnn/tsnnConfig.cmake)
    message(FATAL_ERROR "install tree lacks share/cmake/tsnn/tsnnConfig.cmake")
  endif()
  list(APPEND consumer_args -DCMAKE_PREFIX_PATH=${WORK}/prefix)
else()
  list(APPEND consumer_args -DTSNN_SOURCE_DIR=${TSNN_SOURCE})
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
if(NOT rc EQUAL 0 OR NOT out MATCHES "tsnn 0\\.")
  message(FATAL_ERROR "the consumer failed (${rc}): ${out}")
endif()
