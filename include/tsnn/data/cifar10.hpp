#pragma once
/// \file
/// \brief Reader and writer for the binary version of CIFAR-10 ("cifar-10-binary.tar.gz").
///
/// A batch file is a sequence of fixed-size records and nothing else:
///
///     offset 0      1 byte        label, 0..9
///     offset 1      1024 bytes    red channel, 32 x 32, row-major (row y, column x at y*32 + x)
///     offset 1025   1024 bytes    green channel
///     offset 2049   1024 bytes    blue channel
///
/// i.e. 3073 bytes per record (the distributed batches hold 10000 records each). The 3072 pixel
/// bytes are already in channel-height-width (CHW) order, so pixel byte j of a record becomes
/// feature j = c*1024 + y*32 + x, the layout ImageAugmentation{3, 32, 32} expects.
///
/// The extracted archive is a folder "cifar-10-batches-bin" holding data_batch_1.bin ..
/// data_batch_5.bin (training, 50000 images) and test_batch.bin (10000 images).

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/file.hpp"

namespace tsnn::data {

/// \brief Bytes of pixel data per CIFAR-10 image: 3 channels x 32 x 32.
inline constexpr std::size_t kCifar10ImageBytes = 3072;
/// \brief Bytes per record of a CIFAR-10 batch file: the label byte and the pixels.
inline constexpr std::size_t kCifar10RecordBytes = 1 + kCifar10ImageBytes;
/// \brief Number of CIFAR-10 classes.
inline constexpr int kCifar10Classes = 10;

/// \brief The CIFAR-10 class names, indexed by label (batches.meta.txt of the archive).
inline constexpr const char* kCifar10ClassNames[kCifar10Classes] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

/// \brief Loads one CIFAR-10 batch file.
/// \tparam Scalar floating-point type of the features.
/// \param path the batch file (e.g. data_batch_1.bin).
/// \return N x 3072 features in CHW order, each pixel / 255 (computed in double and rounded to
///   Scalar, so in [0, 1]), labels 0..9, numClasses = 10.
/// \throws IoError if the file cannot be opened or read; the message names the path and the
///   system's reason.
/// \throws FormatError if the size is not a positive multiple of 3073 bytes (the message gives
///   the size, the whole records it holds and the leftover bytes) or a label byte exceeds 9 (the
///   message gives the 0-based record index and the value).
template <class Scalar = float>
Dataset<Scalar> loadCifar10Batch(const std::string& path) {
  using tsnn::detail::raise;
  constexpr const char* kCaller = "loadCifar10Batch()";
  // Read everything first: the record count, and so the matrix size, follows from the length.
  const std::string file = tsnn::readFile(path, kCaller);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(file.data());
  const std::size_t size = file.size();

  const std::size_t records = size / kCifar10RecordBytes;
  const std::size_t leftover = size % kCifar10RecordBytes;
  if (records == 0 || leftover != 0) {
    raise<FormatError>(kCaller, ": '", path, "' has ", size,
                       " bytes, which is not a positive multiple of the ", kCifar10RecordBytes,
                       "-byte CIFAR-10 record (", records, " whole records and ", leftover,
                       " leftover bytes)");
  }

  Scalar scale[256];  // pixel byte -> Scalar, so every pixel is converted the same way
  for (int v = 0; v < 256; ++v) scale[v] = static_cast<Scalar>(v / 255.0);

  Dataset<Scalar> ds;
  ds.numClasses = kCifar10Classes;
  ds.labels.resize(records);
  ds.features.resize(static_cast<Eigen::Index>(records),
                     static_cast<Eigen::Index>(kCifar10ImageBytes));
  for (std::size_t r = 0; r < records; ++r) {
    const std::uint8_t* rec = bytes + r * kCifar10RecordBytes;
    if (rec[0] >= kCifar10Classes) {
      raise<FormatError>(kCaller, ": '", path, "' record ", r, " has label ",
                         static_cast<int>(rec[0]), ", expected 0..", kCifar10Classes - 1);
    }
    ds.labels[r] = rec[0];
    Scalar* dst = ds.features.data() + r * kCifar10ImageBytes;
    for (std::size_t j = 0; j < kCifar10ImageBytes; ++j) dst[j] = scale[rec[1 + j]];
  }
  return ds;
}

/// \brief Loads the CIFAR-10 training and test sets from the extracted binary archive.
///
/// Looks in \p dir and then in dir/cifar-10-batches-bin for a folder holding both
/// data_batch_1.bin and test_batch.bin. The training set is data_batch_1.bin .. data_batch_5.bin
/// concatenated in that order, skipping any of batches 2..5 that are absent (so a reduced copy
/// with fewer batches also loads); the test set is test_batch.bin.
/// \tparam Scalar floating-point type of the features.
/// \param dir the "cifar-10-batches-bin" folder or the folder that contains it.
/// \return {training set, test set}, 3072 features in [0, 1] and 10 classes each.
/// \throws IoError if neither folder holds both required files (the message lists every path
///   looked for), or a file cannot be read.
/// \throws FormatError as loadCifar10Batch.
template <class Scalar = float>
std::pair<Dataset<Scalar>, Dataset<Scalar>> loadCifar10(const std::string& dir) {
  namespace fs = std::filesystem;
  constexpr const char* kCaller = "loadCifar10()";
  const fs::path candidates[] = {fs::path(dir), fs::path(dir) / "cifar-10-batches-bin"};
  std::string tried;
  const fs::path* base = nullptr;
  for (const fs::path& c : candidates) {
    std::error_code ec;
    const fs::path train = c / "data_batch_1.bin";
    const fs::path test = c / "test_batch.bin";
    if (fs::is_regular_file(train, ec) && fs::is_regular_file(test, ec)) {
      base = &c;
      break;
    }
    tried += (tried.empty() ? "'" : ", '") + train.string() + "', '" + test.string() + "'";
  }
  if (base == nullptr) {
    tsnn::detail::raise<IoError>(kCaller, ": cannot find the CIFAR-10 binary batches in '", dir,
                                 "': looked for data_batch_1.bin and test_batch.bin together in ",
                                 tried);
  }

  std::vector<Dataset<Scalar>> parts;
  Eigen::Index rows = 0;
  for (int i = 1; i <= 5; ++i) {
    const fs::path p = *base / ("data_batch_" + std::to_string(i) + ".bin");
    std::error_code ec;
    if (i > 1 && !fs::exists(p, ec)) continue;
    parts.push_back(loadCifar10Batch<Scalar>(p.string()));
    rows += parts.back().size();
  }
  std::pair<Dataset<Scalar>, Dataset<Scalar>> sets;
  Dataset<Scalar>& train = sets.first;
  train.numClasses = kCifar10Classes;
  train.features.resize(rows, static_cast<Eigen::Index>(kCifar10ImageBytes));
  train.labels.reserve(static_cast<std::size_t>(rows));
  Eigen::Index at = 0;
  for (Dataset<Scalar>& part : parts) {
    train.features.middleRows(at, part.size()) = part.features;
    train.labels.insert(train.labels.end(), part.labels.begin(), part.labels.end());
    at += part.size();
    part = Dataset<Scalar>();  // release each batch as soon as it is copied
  }
  sets.second = loadCifar10Batch<Scalar>((*base / "test_batch.bin").string());
  return sets;
}

/// \brief Writes a CIFAR-10 batch file atomically and durably (via writeFileAtomically), e.g. to
/// make test data or a subset in the real format.
/// \param path destination file.
/// \param labels one label per image, each 0..9.
/// \param pixels labels.size() x 3072 bytes: each image's red, green and blue 32 x 32 planes.
/// \throws InvalidArgument if labels is empty, pixels.size() != labels.size() * 3072, or a
///   label exceeds 9 (the message gives the index and value).
/// \throws IoError if the file cannot be written or renamed into place.
inline void writeCifar10Batch(const std::string& path, const std::vector<std::uint8_t>& labels,
                              const std::vector<std::uint8_t>& pixels) {
  using tsnn::detail::raise;
  constexpr const char* kCaller = "writeCifar10Batch()";
  if (labels.empty()) raise<InvalidArgument>(kCaller, ": '", path, "': no images to write");
  if (pixels.size() != labels.size() * kCifar10ImageBytes) {
    raise<InvalidArgument>(kCaller, ": '", path, "': ", labels.size(), " labels need ",
                           labels.size() * kCifar10ImageBytes, " pixel bytes, got ", pixels.size());
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= kCifar10Classes) {
      raise<InvalidArgument>(kCaller, ": '", path, "': label ", static_cast<int>(labels[i]),
                             " at index ", i, " is outside 0..", kCifar10Classes - 1);
    }
  }
  writeFileAtomically(
      path,
      [&](std::ostream& out) {
        for (std::size_t i = 0; i < labels.size(); ++i) {
          out.put(static_cast<char>(labels[i]));
          out.write(reinterpret_cast<const char*>(pixels.data() + i * kCifar10ImageBytes),
                    static_cast<std::streamsize>(kCifar10ImageBytes));
        }
      },
      kCaller);
}

}  // namespace tsnn::data
