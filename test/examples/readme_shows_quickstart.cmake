# Fails unless README.md's "A model is a type" code block is, line for line, the part of
# examples/quickstart.cpp between its "---8<--- README" markers (so the README never shows code
# that does not compile). Run with -DREADME=... -DSOURCE=...
file(READ "${SOURCE}" source)
string(REGEX MATCH "// ---8<--- README: A model is a type\n(.*)// ---8<---\n" found "${source}")
if(NOT found)
  message(FATAL_ERROR "${SOURCE} has no '---8<--- README' markers")
endif()
set(program "${CMAKE_MATCH_1}")
file(READ "${README}" readme)
string(FIND "${readme}" "```cpp\n${program}```" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md's \"A model is a type\" block differs from the marked part of ${SOURCE}; "
                      "copy that part into the README's ```cpp block")
endif()
message(STATUS "README shows the quickstart's code")
