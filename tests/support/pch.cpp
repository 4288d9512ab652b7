// Compiled only to build the shared precompiled header (see tests/CMakeLists.txt).
