// Tests for tsnn/sparse/pattern_remap.hpp: remapped() moves values to their new positions and
// zeroes new ones; PatternRemap::then() composes two changes (entries and rows, with rows absent
// on either side) and refuses remaps that do not chain; NetworkRemap collects per-layer changes.

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/sparse/pattern_remap.hpp"

namespace {

using Remap = tsnn::PatternRemap<std::int32_t>;

Remap makeRemap(std::uint64_t from, std::uint64_t to, std::vector<std::int32_t> entries,
                std::optional<std::vector<std::int32_t>> rows = std::nullopt) {
  Remap r;
  r.from = from;
  r.to = to;
  r.entries = std::move(entries);
  r.rows = std::move(rows);
  return r;
}

}  // namespace

TEST_CASE("remapped moves each value to its new position and starts new ones at zero",
          "[sparse][remap]") {
  const std::vector<double> old{1.5, -2, 3, 4};
  CHECK(tsnn::remapped(old, std::vector<std::int32_t>{2, -1, 0, 3, -1}) ==
        std::vector<double>{3, 0, 1.5, 4, 0});
  CHECK(tsnn::remapped(old, std::vector<std::int32_t>{}).empty());
  CHECK(tsnn::remapped(std::vector<float>{}, std::vector<std::int64_t>{-1, -1}) ==
        std::vector<float>{0, 0});
  CHECK_THROWS_WITH(tsnn::remapped(old, std::vector<std::int32_t>{0, 4}, "caller()"),
                    Catch::StartsWith("tsnn: caller(): new position 1 continues old position 4") &&
                        Catch::Contains("4 entries"));
}

TEST_CASE("PatternRemap::then composes entries and rows of two changes", "[sparse][remap]") {
  // First change 10 -> 11: 4 entries become 3 (old 3, new, old 0); rows 3 -> 2 (old 2, old 0).
  const Remap a = makeRemap(10, 11, {3, -1, 0}, std::vector<std::int32_t>{2, 0});
  // Second change 11 -> 12: 3 entries become 4 (old 2, old 1, new, old 0); rows unchanged.
  const Remap b = makeRemap(11, 12, {2, 1, -1, 0});
  const Remap ab = a.then(b);
  CHECK(ab.from == 10);
  CHECK(ab.to == 12);
  // Entry k of the result continues a.entries[b.entries[k]]: 0, -1 (new in a), -1 (new in b), 3.
  CHECK(ab.entries == std::vector<std::int32_t>{0, -1, -1, 3});
  CHECK(ab.rows == std::vector<std::int32_t>{2, 0});
  // Rows only in the later change; in both; in neither.
  const Remap c = makeRemap(12, 13, {0, 1, 2, 3}, std::vector<std::int32_t>{1});
  CHECK(b.then(c).rows == std::vector<std::int32_t>{1});
  CHECK(ab.then(c).rows == std::vector<std::int32_t>{0});
  CHECK(!b.then(makeRemap(12, 14, {3})).rows);
  // Applying the composition equals applying the two in turn.
  const std::vector<float> state{10, 20, 30, 40};
  CHECK(tsnn::remapped(state, ab.entries) ==
        tsnn::remapped(tsnn::remapped(state, a.entries), b.entries));
}

TEST_CASE("PatternRemap::then refuses changes that do not chain", "[sparse][remap][errors]") {
  const Remap a = makeRemap(1, 2, {0, 1});
  CHECK_THROWS_WITH(a.then(makeRemap(3, 4, {0})),
                    Catch::StartsWith("tsnn: PatternRemap::then(): the later remap starts at "
                                      "pattern 3, this one ends at pattern 2"));
  CHECK_THROWS_WITH(a.then(makeRemap(2, 4, {0, 2})),
                    Catch::Contains("entry 1 of the later remap continues entry 2"));
  const Remap rows = makeRemap(2, 3, {0}, std::vector<std::int32_t>{5});
  CHECK_THROWS_WITH(makeRemap(1, 2, {0}, std::vector<std::int32_t>{0, 1}).then(rows),
                    Catch::Contains("row 0 of the later remap continues row 5"));
}

TEST_CASE("NetworkRemap records each layer's changes in order", "[sparse][remap]") {
  tsnn::NetworkRemap<std::int32_t> r(3);
  CHECK(r.layers.size() == 3);
  CHECK((!r.layers[0] && !r.layers[1] && !r.layers[2]));
  r.add(1, makeRemap(5, 6, {1, 0}));
  tsnn::NetworkRemap<std::int32_t> later(3);
  later.add(1, makeRemap(6, 7, {-1, 1}));
  later.add(2, makeRemap(8, 9, {0}));
  r.then(later);
  REQUIRE(r.layers[1]);
  CHECK(r.layers[1]->from == 5);
  CHECK(r.layers[1]->to == 7);
  CHECK(r.layers[1]->entries == std::vector<std::int32_t>{-1, 0});
  REQUIRE(r.layers[2]);
  CHECK(r.layers[2]->from == 8);
  CHECK(!r.layers[0]);
  CHECK_THROWS_WITH(r.add(3, makeRemap(0, 1, {})),
                    Catch::StartsWith("tsnn: NetworkRemap::add(): layer 3 of a remap of 3"));
  CHECK_THROWS_WITH(r.add(1, makeRemap(6, 8, {0})),
                    Catch::Contains("starts at pattern 6, this one ends at pattern 7"));
  CHECK_THROWS_WITH(r.then(tsnn::NetworkRemap<std::int32_t>(2)),
                    Catch::StartsWith("tsnn: NetworkRemap::then(): the later remap has 2 layers"));
}
