// A downstream program: builds a small sparse network and runs one forward pass.
#include <cstdio>

#include "tsnn/core/version.hpp"
#include "tsnn/nn/network.hpp"

int main() {
  tsnn::NetworkOptions o;
  o.sizes = {8, 16, 3};
  o.epsilon = 2;
  tsnn::Networkf net(o);
  tsnn::Activations<float> x = tsnn::Activations<float>::Ones(4, 8);
  tsnn::Workspace<float> ws;
  const auto& p = net.forward(x, ws);
  const float sum = p.row(0).sum();
  // TSNN_HAS_ZLIB reaches consumers from the target, as TSNN_USE_ZLIB chose.
#if defined(TSNN_HAS_ZLIB)
  const char* zlib = "on";
#else
  const char* zlib = "off";
#endif
  std::printf("tsnn %s: %lld connections, row sum %.3f, zlib %s\n", tsnn::versionString(),
              net.nonZeros(), sum, zlib);
  return (sum > 0.999f && sum < 1.001f) ? 0 : 1;
}
