# Checks that the library's folders are layers: a header under ROOT/tsnn/<folder>/ may include
# tsnn headers of its own folder or of folders below it, never above. Run as
#   cmake -DROOT=<dir holding tsnn/> -P check_include_layers.cmake
# It fails (FATAL_ERROR) listing every upward include, every include of the umbrella header from
# inside the library, every folder that has no place in the order below, and every core header
# that the umbrella tsnn/tsnn.hpp leaves out.
#
# Bottom to top; the umbrella tsnn/tsnn.hpp sits above all of them.
set(TSNN_LAYERS core sparse nn optim topology io data training extras)

if(NOT ROOT)
  message(FATAL_ERROR "check_include_layers: pass -DROOT=<directory that holds tsnn/>")
endif()

function(tsnn_layer_rank folder out)
  list(FIND TSNN_LAYERS "${folder}" rank)
  set(${out} ${rank} PARENT_SCOPE)
endfunction()

get_filename_component(ROOT "${ROOT}" ABSOLUTE)
file(GLOB_RECURSE headers RELATIVE "${ROOT}" "${ROOT}/tsnn/*.hpp")
if(NOT headers)
  message(FATAL_ERROR "check_include_layers: no headers under ${ROOT}/tsnn")
endif()
set(problems "")
foreach(header ${headers})
  if(header STREQUAL "tsnn/tsnn.hpp")
    continue()
  endif()
  # tsnn/<folder>/... (arch/ and other subfolders belong to their top folder's layer)
  string(REGEX MATCH "^tsnn/([^/]+)/" _ "${header}")
  set(folder "${CMAKE_MATCH_1}")
  tsnn_layer_rank("${folder}" rank)
  if(rank EQUAL -1)
    list(APPEND problems "${header} is in folder '${folder}', which has no layer")
    continue()
  endif()
  file(STRINGS "${ROOT}/${header}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]tsnn/")
  foreach(line ${lines})
    string(REGEX MATCH "[<\"](tsnn/[^>\"]+)[>\"]" _ "${line}")
    set(target "${CMAKE_MATCH_1}")
    if(target STREQUAL "tsnn/tsnn.hpp")
      list(APPEND problems "${header} includes the umbrella header tsnn/tsnn.hpp")
      continue()
    endif()
    string(REGEX MATCH "^tsnn/([^/]+)/" _ "${target}")
    set(tfolder "${CMAKE_MATCH_1}")
    tsnn_layer_rank("${tfolder}" trank)
    if(trank EQUAL -1)
      list(APPEND problems "${header} includes ${target}, whose folder has no layer")
    elseif(trank GREATER rank)
      list(APPEND problems "upward include: ${header} includes ${target} (${folder} is below ${tfolder})")
    endif()
  endforeach()
endforeach()

# The umbrella, where there is one, must include every header of the core library (all but the
# optional extras), so that it cannot fall behind when a header is added.
if(EXISTS "${ROOT}/tsnn/tsnn.hpp")
  file(STRINGS "${ROOT}/tsnn/tsnn.hpp" umbrella REGEX "^#include \"tsnn/")
  foreach(header ${headers})
    if(header STREQUAL "tsnn/tsnn.hpp" OR header MATCHES "^tsnn/extras/")
      continue()
    endif()
    list(FIND umbrella "#include \"${header}\"" found)
    if(found EQUAL -1)
      list(APPEND problems "tsnn/tsnn.hpp does not include ${header}")
    endif()
  endforeach()
endif()

if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "check_include_layers: the include graph breaks the layer order "
                      "(${TSNN_LAYERS}):\n  ${text}")
endif()
list(LENGTH headers count)
message(STATUS "check_include_layers: ${count} headers, every include goes down or sideways")
