#pragma once
// A downward include is allowed.
#include "tsnn/core/other.hpp"
