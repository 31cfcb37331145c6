// A downstream program: builds a small sparse network and runs one forward pass.
#include <cstdio>

#include "tsnn/nn/network.hpp"
#include "tsnn/core/version.hpp"

int main() {
  tsnn::NetworkOptions o;
  o.sizes = {8, 16, 3};
  o.epsilon = 2;
  tsnn::Networkf net(o);
  tsnn::Activations<float> x = tsnn::Activations<float>::Ones(4, 8);
  tsnn::Workspace<float> ws;
  const auto& p = net.forward(x, ws);
  const float sum = p.row(0).sum();
  std::printf("tsnn %s: %lld connections, row sum %.3f\n", tsnn::versionString(),
              net.nonZeros(), sum);
  return (sum > 0.999f && sum < 1.001f) ? 0 : 1;
}
