// Tests for tsnn/core/parallel.hpp: Threads is built only by its named constructors (no bool or
// int converts to it silently), resolves automatic() to the runtime's default, and decides with
// openRegion() whether an operation opens a region; the shims agree with the OpenMP runtime.

#include <catch2/catch.hpp>
#include <type_traits>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

using tsnn::Threads;

// The positional bools this type replaced must not compile where a Threads is expected.
static_assert(!std::is_convertible<bool, Threads>::value, "a bool is not a thread count");
static_assert(!std::is_convertible<int, Threads>::value, "neither is a bare int");
static_assert(Threads::serial().requested() == 1, "serial is one thread");
static_assert(Threads::automatic().requested() == 0, "automatic asks for nothing in particular");

TEST_CASE("Threads resolves to the count asked for or the runtime's default", "[core][parallel]") {
  CHECK(Threads::count(0) == Threads::automatic());
  CHECK(Threads::count(1) == Threads::serial());
  CHECK(Threads::count(5).requested() == 5);
  CHECK(Threads::count(5).resolve() == 5);
  CHECK(Threads::serial().resolve() == 1);
  CHECK(Threads::automatic().resolve() == tsnn::maxThreads());
  CHECK(Threads::count(2) != Threads::count(3));
  CHECK_THROWS_AS(Threads::count(-1), tsnn::InvalidArgument);
}

TEST_CASE("openRegion opens one for more than one thread, outside any region only",
          "[core][parallel]") {
  CHECK_FALSE(tsnn::detail::openRegion(Threads::serial()));
  CHECK(tsnn::detail::openRegion(Threads::count(2)));
  CHECK(tsnn::detail::openRegion(Threads::automatic()) == (tsnn::maxThreads() > 1));
  CHECK_FALSE(tsnn::inParallel());
  CHECK(tsnn::threadId() == 0);
  CHECK(tsnn::teamSize() == 1);
#if defined(_OPENMP)
  // Inside a region, even a team of one, nothing opens another.
  bool nested = true, inside = false;
#pragma omp parallel num_threads(1)
  {
    inside = tsnn::inParallel();
    nested = tsnn::detail::openRegion(Threads::count(4));
  }
  CHECK(inside);
  CHECK_FALSE(nested);
#endif
}
