// libFuzzer target for tsnn/io/checkpoint.hpp: decodes arbitrary bytes as a checkpoint.
//
// Before decoding, the harness makes the header's file-size field and the trailing CRC-32 agree
// with the input (when it is long enough to hold them), so that mutations reach the section
// parser instead of all stopping at the checksum. Every input is tried as a Network<float,
// int32> and as a Network<double, int64>; the header's type sizes decide which one can succeed.
//
// Expected outcomes: decodeCheckpoint returns, or throws tsnn::FormatError whose message starts
// with "tsnn: loadCheckpoint(): 'fuzz.ckpt'". Anything else is reported and aborts: another
// exception type, a sanitizer report, an allocation beyond libFuzzer's limit, or a decoded
// network that does not re-encode to exactly the input (the format is canonical: one network,
// state and preprocessing have one encoding) or cannot run a forward pass. An input of an older
// format version is written in the current one instead, so it must decode from that encoding to
// the same network and state, which must encode to the same bytes again.
//
// Seeds (fuzz/corpus/checkpoint/): checkpoints written by saveCheckpoint: in format 1, a
// float/int32 network with a removed neuron, a training state and preprocessing, and a
// double/int64 ERK network with default state; in format 2, a float/int32 network after a
// neuron removal with SGD state and preprocessing, and a double/int64 ERK network with Adam state.
// Inputs are the file's bytes as they are.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "tsnn/core/errors.hpp"
#include "tsnn/io/checkpoint.hpp"

namespace {

void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_checkpoint: %s: %s\n", what, detail.c_str());
  std::abort();
}

void putLe(std::string& b, std::size_t at, std::uint64_t v, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

template <class Scalar, class Index>
void decode(const std::string& bytes) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  try {
    tsnn::TrainingState state;
    tsnn::Preprocessing prep;
    const tsnn::Network<Scalar, Index> net = tsnn::detail::decodeCheckpoint<Scalar, Index>(
        data, bytes.size(), "fuzz.ckpt", &state, &prep);
    const std::string again = tsnn::detail::encodeCheckpoint(net, state, prep);
    const bool current = bytes[8] == static_cast<char>(tsnn::kCheckpointVersion);
    if (current && again != bytes)
      fail("round trip", "the decoded checkpoint encodes to other bytes");
    if (!current) {
      // An older version: its current encoding must be a fixed point of decode and encode.
      tsnn::TrainingState state2;
      tsnn::Preprocessing prep2;
      const auto net2 = tsnn::detail::decodeCheckpoint<Scalar, Index>(
          reinterpret_cast<const unsigned char*>(again.data()), again.size(), "fuzz.ckpt",
          &state2, &prep2);
      if (tsnn::detail::encodeCheckpoint(net2, state2, prep2) != again)
        fail("round trip", "an older checkpoint's current encoding does not round-trip");
    }
    typename tsnn::Network<Scalar, Index>::Features x =
        tsnn::Network<Scalar, Index>::Features::Zero(2, net.inputs());
    (void)net.predict(x);
  } catch (const tsnn::FormatError& e) {
    const std::string msg = e.what();
    if (msg.rfind("tsnn: loadCheckpoint(): 'fuzz.ckpt'", 0) != 0) fail("message", msg);
  } catch (const std::exception& e) {
    fail("unexpected exception", e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.size() >= 32) {
    putLe(bytes, 12, bytes.size(), 8);
    putLe(bytes, bytes.size() - 4,
          tsnn::detail::crc32(reinterpret_cast<const unsigned char*>(bytes.data()),
                              bytes.size() - 4),
          4);
  }
  decode<float, std::int32_t>(bytes);
  decode<double, std::int64_t>(bytes);
  return 0;
}
