# Fails unless README.md contains examples/minimal.cpp verbatim inside a ```cpp block.
file(READ ${README} readme)
file(READ ${SOURCE} source)
string(FIND "${readme}" "```cpp\n${source}```" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "README.md does not contain examples/minimal.cpp verbatim in a ```cpp block")
endif()
