// libFuzzer target for tsnn/data/idx.hpp: readIdx on raw and gzip files, loadIdxPair on the
// arrays it accepts, and writeIdx/readIdx round trips.
//
// readIdx only reads files, so each input is written to a per-process file (under
// $TSNN_FUZZ_DIR, else $TMPDIR, else /tmp), overwritten every iteration. Input layout:
//
//   byte 0 = mode    bit 0     0: the file is bytes 1.. as they are (a file starting 1f 8b is
//                               still read as gzip, so real gzip streams are fuzzed too);
//                               1: the file is bytes 1.. gzip-compressed with zlib
//                    bits 1-2  gzip only: compression level 0 (stored), 1, 6 or 9
//                    bits 3-4  gzip only: 0 intact; 1 drop the last k+1 bytes (inside the
//                               8-byte trailer); 2 keep only (k+1)/9 of the file; 3 flip bit k
//                               of byte (payload size mod file size)
//                    bits 5-7  k
//   bytes 1..        the IDX payload
//
// Expected outcomes: readIdx returns or throws a tsnn::Error (FormatError, or IoError if the
// disk misbehaves). Anything else is reported and aborts: another exception type, a message
// without the "tsnn: <caller>(): " prefix, a sanitizer report, or a result that disagrees with
// the reference parser below (an accepted truncated gzip stream included). The harness's own
// failures (cannot write its files) exit with status 2, so they are not mistaken for findings.
//
// To see the file readIdx read for a crash input: TSNN_FUZZ_DIR=$PWD ./fuzz_idx crash-<sha>;
// the file (tsnn_fuzz_idx_<pid>.idx) stays when the process dies.

#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "tsnn/data/idx.hpp"
#include "tsnn/core/errors.hpp"

#if !defined(TSNN_HAS_ZLIB)
#error "fuzz_idx needs tsnn built with zlib (TSNN_HAS_ZLIB)"
#endif

namespace {

using Bytes = std::vector<std::uint8_t>;

// Inputs above this many elements skip loadIdxPair and the round trip (they only cost time).
constexpr std::uint64_t kSmallElements = 1U << 16;

struct Paths {
  std::string images;
  std::string labels;
  std::string roundTrip;
};

Paths g_paths;
bool g_keepFiles = false;

void removeFiles() {
  if (g_keepFiles) return;
  for (const std::string* p : {&g_paths.images, &g_paths.labels, &g_paths.roundTrip}) {
    std::remove(p->c_str());
    std::remove((*p + ".tmp").c_str());
  }
}

[[noreturn]] void harnessFailure(const std::string& what) {
  std::fprintf(stderr, "fuzz_idx: harness failure (not a finding): %s\n", what.c_str());
  std::exit(2);
}

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz_idx: FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void writeFile(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) harnessFailure("cannot create " + path);
  const bool ok = (size == 0 || std::fwrite(data, 1, size, f) == size);
  if (std::fclose(f) != 0 || !ok) harnessFailure("cannot write " + path);
}

// A gzip member (RFC 1952) holding data, made in memory with deflate so that the level is exact.
Bytes gzipBytes(const std::uint8_t* data, std::size_t size, int level) {
  z_stream s{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    harnessFailure("deflateInit2 failed");
  }
  Bytes out(deflateBound(&s, static_cast<uLong>(size)) + 32);
  s.next_in = const_cast<Bytef*>(data);
  s.avail_in = static_cast<uInt>(size);
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  if (rc != Z_STREAM_END) harnessFailure("deflate did not finish");
  return out;
}

// Reference parser, written from the format description in idx.hpp independently of readIdx:
// the array if bytes are a valid unsigned-byte IDX file, otherwise nothing.
std::optional<tsnn::data::IdxArray> referenceParse(const std::uint8_t* p, std::size_t n) {
  if (n < 4 || p[0] != 0 || p[1] != 0 || p[2] != 0x08 || p[3] == 0) return std::nullopt;
  const std::size_t ndims = p[3];
  if (n < 4 + 4 * ndims) return std::nullopt;
  tsnn::data::IdxArray a;
  unsigned __int128 count = 1;  // 255 factors < 2^32 may overflow even this: stop at the limit
  for (std::size_t i = 0; i < ndims; ++i) {
    const std::uint8_t* b = p + 4 + 4 * i;
    const std::uint32_t d = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                            (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
    if (d == 0) return std::nullopt;
    a.dims.push_back(d);
    if (count <= (std::uint64_t{1} << 31)) count *= d;
  }
  if (count > (std::uint64_t{1} << 31)) return std::nullopt;
  if (n - 4 - 4 * ndims != count) return std::nullopt;
  a.data.assign(p + 4 + 4 * ndims, p + n);
  return a;
}

std::string describe(const tsnn::data::IdxArray& a) {
  return "dims " + tsnn::detail::idxDimsString(a.dims) + ", " + std::to_string(a.data.size()) +
         " bytes";
}

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Runs f; a tsnn::Error whose message starts with "tsnn: " and one of the callers is expected
// (returns false), anything else is a finding. Returns true when f returned normally.
template <class F>
bool expectReturnOrTsnnError(const char* what, std::initializer_list<const char*> callers, F&& f) {
  try {
    f();
    return true;
  } catch (const tsnn::Error& e) {
    const std::string msg = e.what();
    for (const char* c : callers) {
      if (startsWith(msg, std::string("tsnn: ") + c + ": ")) return false;
    }
    finding(std::string(what) + " threw a tsnn::Error without the expected prefix: " + msg);
  } catch (const std::exception& e) {
    finding(std::string(what) + " threw a std::exception that is not a tsnn::Error: " + e.what());
  } catch (...) {
    finding(std::string(what) + " threw something that is not a std::exception");
  }
}

// readIdx accepted arr from the images file: exercise loadIdxPair with a labels file derived
// from the data. Byte L (the last data byte) picks numClasses = 1 + (L & 15); bit 4 adds one
// label too many, bit 5 makes the labels file 2-D (n x 1), bit 7 lets labels reach numClasses
// (out of range).
void fuzzLoadIdxPair(const tsnn::data::IdxArray& arr) {
  const std::uint8_t last = arr.data.back();
  const int numClasses = 1 + (last & 15);
  const bool extraLabel = (last & 0x10) != 0;
  const bool labels2d = (last & 0x20) != 0;
  const int modulus = numClasses + ((last & 0x80) != 0 ? 1 : 0);
  const std::size_t n = arr.dims[0];

  tsnn::data::IdxArray labels;
  labels.dims = {static_cast<std::uint32_t>(n + (extraLabel ? 1 : 0))};
  if (labels2d) labels.dims.push_back(1);
  labels.data.resize(labels.dims[0]);
  bool labelsInRange = true;
  for (std::size_t i = 0; i < labels.data.size(); ++i) {
    labels.data[i] = static_cast<std::uint8_t>(arr.data[(7 * i) % arr.data.size()] % modulus);
    if (i < n && labels.data[i] >= numClasses) labelsInRange = false;
  }
  bool wrote = false;
  expectReturnOrTsnnError("writeIdx(labels)", {"writeIdx()"}, [&] {
    tsnn::data::writeIdx(g_paths.labels, labels, false);
    wrote = true;
  });
  if (!wrote) harnessFailure("writeIdx could not write the labels file");

  const std::size_t ndims = arr.dims.size();
  const bool shapeOk = ndims == 2 || ndims == 3;
  tsnn::data::Dataset<float> ds;
  const bool ok = expectReturnOrTsnnError("loadIdxPair", {"loadIdxPair()", "readIdx()"}, [&] {
    ds = tsnn::data::loadIdxPair<float>(g_paths.images, g_paths.labels, numClasses);
  });
  const bool shouldLoad = shapeOk && !labels2d && !extraLabel && labelsInRange;
  if (ok != shouldLoad) {
    finding(std::string("loadIdxPair ") + (ok ? "accepted" : "rejected") + " images with " +
            describe(arr) + ", labels " + describe(labels) + ", numClasses " +
            std::to_string(numClasses) + (labelsInRange ? "" : " (a label out of range)"));
  }
  if (!ok) return;
  const std::size_t d = arr.data.size() / n;
  if (ds.size() != static_cast<Eigen::Index>(n) || ds.dim() != static_cast<Eigen::Index>(d) ||
      ds.labels.size() != n || ds.numClasses != numClasses) {
    finding("loadIdxPair returned a dataset of the wrong shape for " + describe(arr));
  }
  for (std::size_t i = 0; i < arr.data.size(); ++i) {
    if (ds.features.data()[i] != static_cast<float>(arr.data[i])) {
      finding("loadIdxPair feature " + std::to_string(i) + " differs from the IDX byte");
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (ds.labels[i] != labels.data[i]) finding("loadIdxPair label differs from the IDX byte");
  }
  if (!expectReturnOrTsnnError("Dataset::validate", {"fuzz_idx"},
                               [&] { ds.validate("fuzz_idx"); })) {
    finding("loadIdxPair returned a dataset that fails Dataset::validate()");
  }
}

// writeIdx then readIdx must give back exactly arr, raw or gzip.
void fuzzRoundTrip(const tsnn::data::IdxArray& arr, bool gzip) {
  tsnn::data::IdxArray back;
  const bool ok =
      expectReturnOrTsnnError("writeIdx/readIdx round trip", {"writeIdx()", "readIdx()"}, [&] {
        tsnn::data::writeIdx(g_paths.roundTrip, arr, gzip);
        back = tsnn::data::readIdx(g_paths.roundTrip);
      });
  if (!ok || back.dims != arr.dims || back.data != arr.data) {
    finding(std::string("writeIdx/readIdx round trip (") + (gzip ? "gzip" : "raw") +
            ") changed or rejected " + describe(arr));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  std::string dir = "/tmp";
  if (const char* d = std::getenv("TSNN_FUZZ_DIR"); d != nullptr && *d != '\0') {
    dir = d;
    g_keepFiles = true;
  } else if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') {
    dir = t;
  }
  const std::string base = dir + "/tsnn_fuzz_idx_" + std::to_string(::getpid());
  g_paths = {base + ".idx", base + "_labels.idx", base + "_roundtrip.idx"};
  std::atexit(removeFiles);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::uint8_t* payload = data + 1;
  const std::size_t payloadSize = size - 1;
  const bool gzip = (mode & 1) != 0;
  const int damage = gzip ? (mode >> 3) & 3 : 0;
  const int k = (mode >> 5) & 7;

  // Outcome the reference parser predicts; unknown for a raw file that zlib will read.
  std::optional<tsnn::data::IdxArray> expected = referenceParse(payload, payloadSize);
  bool predictable = !(payloadSize >= 2 && payload[0] == 0x1F && payload[1] == 0x8B);
  bool mustFail = false;

  if (!gzip) {
    writeFile(g_paths.images, payload, payloadSize);
  } else {
    static constexpr int kLevels[4] = {0, 1, 6, 9};
    Bytes gz = gzipBytes(payload, payloadSize, kLevels[(mode >> 1) & 3]);
    predictable = true;
    if (damage == 1) {
      gz.resize(gz.size() - static_cast<std::size_t>(k + 1));  // gz.size() >= 20
      mustFail = true;
    } else if (damage == 2) {
      gz.resize(gz.size() * static_cast<std::size_t>(k + 1) / 9);
      mustFail = true;
    } else if (damage == 3) {
      gz[payloadSize % gz.size()] ^= static_cast<std::uint8_t>(1U << k);
      // zlib may accept it (a flip in the MTIME field is harmless) or reject it; if it accepts
      // it, the data must be the payload: other data would need a CRC-32 and ISIZE collision.
    }
    writeFile(g_paths.images, gz.data(), gz.size());
  }

  tsnn::data::IdxArray arr;
  const bool ok = expectReturnOrTsnnError("readIdx", {"readIdx()"},
                                          [&] { arr = tsnn::data::readIdx(g_paths.images); });
  if (ok) {
    // The IdxArray invariant, whatever the file was.
    if (arr.dims.empty() || arr.dims.size() > 255 ||
        tsnn::detail::idxElementCount(arr.dims) != arr.data.size() ||
        arr.data.size() > tsnn::data::kIdxMaxElements) {
      finding("readIdx returned an array that breaks the IdxArray invariant: " + describe(arr));
    }
    for (std::uint32_t d : arr.dims) {
      if (d == 0) finding("readIdx returned a zero dimension: " + describe(arr));
    }
  }
  if (mustFail && ok) {
    finding("readIdx accepted a truncated gzip stream and returned " + describe(arr));
  }
  if (predictable && !mustFail) {
    if (ok && !expected) {
      finding("readIdx accepted a file the reference parser rejects: " + describe(arr));
    }
    if (!ok && expected && damage != 3) {
      finding("readIdx rejected a valid file with " + describe(*expected));
    }
    if (ok && expected && (arr.dims != expected->dims || arr.data != expected->data)) {
      finding("readIdx returned " + describe(arr) + ", the reference parser " +
              describe(*expected));
    }
  }

  if (ok && arr.data.size() <= kSmallElements) {
    fuzzLoadIdxPair(arr);
    fuzzRoundTrip(arr, gzip);
  }
  return 0;
}
