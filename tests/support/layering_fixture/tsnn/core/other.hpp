#pragma once
// A sideways include is allowed; only planted.hpp breaks the order.
