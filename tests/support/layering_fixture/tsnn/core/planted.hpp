#pragma once
// A planted upward include: core is the lowest layer, so this must be reported.
#include "tsnn/core/other.hpp"
#include "tsnn/nn/network.hpp"
