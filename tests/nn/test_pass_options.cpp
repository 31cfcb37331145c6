// Tests for tsnn/nn/pass_options.hpp: the default and the named constructors, setters that
// return modified copies and compose in any order, the refused negative row offset, and that
// the options reach Network::forward (mode, step, row offset).

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cstdint>

#include "support/oracle.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/nn/pass_options.hpp"

using tsnn::PassOptions;
using tsnn::Threads;

namespace {

// Every field of two PassOptions.
bool same(const PassOptions& a, const PassOptions& b) {
  return a.isTraining() == b.isTraining() && a.step() == b.step() &&
         a.rowOffset() == b.rowOffset() && a.threads() == b.threads();
}

}  // namespace

// Usable in constant expressions, like the values it replaces.
static_assert(!PassOptions().isTraining(), "the default is inference");
static_assert(PassOptions::training(7).serial().step() == 7, "setters keep the step");

TEST_CASE("PassOptions defaults to inference on the default team", "[nn][pass-options]") {
  const PassOptions d;
  CHECK_FALSE(d.isTraining());
  CHECK(d.step() == 0);
  CHECK(d.rowOffset() == 0);
  CHECK(d.threads() == Threads::automatic());
  CHECK(same(d, PassOptions::inference()));
  const PassOptions t = PassOptions::training(42);
  CHECK(t.isTraining());
  CHECK(t.step() == 42);
  CHECK(t.rowOffset() == 0);
  CHECK(t.threads() == Threads::automatic());
}

TEST_CASE("PassOptions setters return modified copies and compose in any order",
          "[nn][pass-options]") {
  const PassOptions base = PassOptions::training(3);
  const PassOptions shard = base.rowOffset(16);
  CHECK(base.rowOffset() == 0);  // the original is untouched
  CHECK(shard.rowOffset() == 16);
  CHECK(shard.step() == 3);
  CHECK(shard.isTraining());
  const PassOptions a = PassOptions::training(3).rowOffset(16).serial();
  const PassOptions b = PassOptions::training(3).serial().rowOffset(16);
  CHECK(same(a, b));
  CHECK(a.threads() == Threads::serial());
  CHECK(a.threads(Threads::count(4)).threads() == Threads::count(4));
  CHECK(a.threads(Threads::count(4)).rowOffset() == 16);
  CHECK(PassOptions::inference().rowOffset(5).isTraining() == false);
}

TEST_CASE("PassOptions refuses a negative row offset", "[nn][pass-options][errors]") {
  CHECK_THROWS_AS(PassOptions::training(1).rowOffset(-1), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(PassOptions::training(1).rowOffset(-3),
                    "tsnn: PassOptions::rowOffset(): offset must be >= 0, got -3");
  CHECK_THROWS_WITH(Threads::count(-2),
                    "tsnn: Threads::count(): thread count must be >= 0, got -2");
}

// The mode, the step and the row offset each change what a forward pass with dropout computes,
// and in the documented way: the row offset selects rows of the whole minibatch's masks.
TEST_CASE("Network::forward follows its PassOptions", "[nn][pass-options][network]") {
  tsnn::NetworkOptions no;
  no.sizes = {6, 40, 3};
  no.epsilon = 20;
  no.dropout = 0.5;
  no.seed = tsnn::test::streamSeed(61);
  const tsnn::Network<double> net(no);
  tsnn::Activations<double> x = tsnn::Activations<double>::Random(12, 6);
  tsnn::Workspace<double> inference, whole, other, part;
  net.forward(x, inference, PassOptions::inference().serial());
  net.forward(x, whole, PassOptions::training(9).serial());
  net.forward(x, other, PassOptions::training(10).serial());
  CHECK_FALSE(inference.dropout);
  CHECK(whole.dropout);
  // The mask the pass applied is the documented one for (seed, step 9, layer 0): the training
  // activations are the inference ones times it.
  const auto mask = tsnn::dropoutMask<double>(12, 40, 0.5, tsnn::dropoutKey(no.seed, 9, 0));
  CHECK((mask.array() == 0.0).any());
  CHECK(tsnn::test::bitIdentical(whole.a[0], (inference.a[0].array() * mask.array()).matrix()));
  CHECK(inference.a[0] != whole.a[0]);
  CHECK(whole.a[0] != other.a[0]);
  // Rows [5, 12) as their own block, told where they sit in the minibatch.
  const tsnn::Activations<double> rows = x.middleRows(5, 7);
  net.forward(rows, part, PassOptions::training(9).rowOffset(5).serial());
  CHECK(tsnn::test::bitIdentical(part.a[0], whole.a[0].middleRows(5, 7)));
  CHECK(tsnn::test::bitIdentical(part.output, whole.output.middleRows(5, 7)));
  // Without the offset the block would draw the minibatch's first rows' masks instead.
  net.forward(rows, part, PassOptions::training(9).serial());
  CHECK(tsnn::test::bitIdentical(
      part.a[0], (inference.a[0].middleRows(5, 7).array() * mask.topRows(7).array()).matrix()));
}
