// Anchors the precompiled header that every test reuses (see tests/CMakeLists.txt).
