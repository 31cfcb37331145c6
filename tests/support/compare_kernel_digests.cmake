# Runs the hidden digest test case of two builds of test_kernels (PORTABLE and NATIVE, the second
# compiled with -march=native) and fails unless every SIMD path that both report, except generic
# (which each build compiles for its own flags), gives the same bits in both. Run as
#   cmake -DPORTABLE=<test_kernels> -DNATIVE=<test_kernels_native> -P compare_kernel_digests.cmake
foreach(build PORTABLE NATIVE)
  execute_process(COMMAND ${${build}} "[.digest]" OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "compare_kernel_digests: ${${build}} failed (${rc}):\n${out}")
  endif()
  string(REGEX MATCHALL "TSNN-DIGEST [a-z0-9]+ float [0-9a-f]+ double [0-9a-f]+" ${build}_lines
         "${out}")
endforeach()
set(compared "")
foreach(line ${PORTABLE_lines})
  string(REGEX MATCH "^TSNN-DIGEST ([a-z0-9]+) " _ "${line}")
  set(path "${CMAKE_MATCH_1}")
  if(path STREQUAL "generic")
    continue()
  endif()
  foreach(other ${NATIVE_lines})
    if(other MATCHES "^TSNN-DIGEST ${path} ")
      if(NOT other STREQUAL line)
        message(FATAL_ERROR "compare_kernel_digests: the ${path} path gives other bits with "
                            "-march=native:\n  portable: ${line}\n  native:   ${other}")
      endif()
      list(APPEND compared ${path})
    endif()
  endforeach()
endforeach()
if(NOT compared)
  message(STATUS "TSNN-SIMD-SKIP: no dispatched SIMD path to compare on this machine")
else()
  message(STATUS "compare_kernel_digests: same bits in both builds for ${compared}")
endif()
