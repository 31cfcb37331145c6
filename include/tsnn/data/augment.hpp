#pragma once
/// \file
/// \brief Random horizontal flips, rotations and translations of image minibatches, drawn per
/// sample from a counter-based key so that any split of a minibatch into shards gives the same
/// result.
///
/// Images are stored as features in channel-height-width order: pixel (c, y, x) of a
/// C x H x W image is feature c*H*W + y*W + x (the CIFAR-10 layout; MNIST is C = 1).
///
/// Transform. A sample gets an ImageTransform {flip, dx, dy}, and its output pixel is
///
///     out(c, y, x) = in(c, y - dy, s(x - dx))   if 0 <= y - dy < H and 0 <= x - dx < W
///                  = 0                           otherwise
///
/// with s(u) = W - 1 - u when flip is set and s(u) = u otherwise: the image is mirrored
/// left-right, then moved dx pixels right and dy pixels down, and pixels that enter from
/// outside are 0 (the feature mean once a StandardScaler has been applied, i.e. "pad with the
/// mean and crop back", the usual CIFAR-10 augmentation).
///
/// With a rotation by theta != 0 (counterclockwise on screen, about the image centre
/// (cx, cy) = ((W - 1) / 2, (H - 1) / 2)), the mirrored image is rotated before it is moved:
/// output pixel (y, x) reads the mirrored image at
///
///     u = cx + cos(theta) (x - dx - cx) - sin(theta) (y - dy - cy)
///     v = cy + sin(theta) (x - dx - cx) + cos(theta) (y - dy - cy)
///
/// (column u, row v, generally not whole), interpolated bilinearly from its four neighbours, a
/// neighbour outside the image counting as 0. (The reference code's Keras ImageDataGenerator
/// rotates and shifts the same way, but fills from the nearest edge pixel and shifts by
/// fractions of a pixel.)///
/// Randomness. The transform of minibatch row r (0-based position in the whole minibatch) in
/// training step `step` depends only on (seed, step, r): a tsnn::Rng is seeded with
///
///     key = mix64(mix64(mix64(seed ^ 0xA06D3E47) ^ step) ^ r)
///
/// and draws, always in this order, u = rng() (flip iff its top bit is set, probability 1/2),
/// dx = rng.below(2m + 1) - m and dy = rng.below(2m + 1) - m with m = maxShift, and
/// theta = maxRotation r degrees with r = rng.uniform(-1, 1). So a shard of rows [lo, hi)
/// augmented with rowOffset = lo matches the same rows of the whole minibatch, and turning flips
/// or rotations on or off does not change the other transforms drawn.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/random.hpp"

namespace tsnn::data {

/// \brief Which random image transforms to apply to a training minibatch, and the image shape.
///
/// Augmentation is off unless flip is set or maxShift > 0; a default-constructed value is off.
struct ImageAugmentation {
  /// Image channels C (3 for CIFAR-10, 1 for MNIST).
  int channels = 0;
  /// Image height H in pixels.
  int height = 0;
  /// Image width W in pixels.
  int width = 0;
  /// Mirror each sample left-right with probability 1/2.
  bool flip = false;
  /// Largest translation m: each sample moves by dx, dy drawn uniformly from [-m, m].
  int maxShift = 0;
  /// Largest rotation in degrees: each sample turns by an angle drawn uniformly from
  /// [-maxRotation, maxRotation]; in [0, 180].
  double maxRotation = 0;

  /// \brief True when the augmentation changes anything (flip, maxShift > 0 or maxRotation > 0).
  bool enabled() const { return flip || maxShift > 0 || maxRotation > 0; }

  /// \brief Checks the options against the number of features \p dim of the data.
  /// \throws InvalidArgument if any of channels, height, width, maxShift is negative; or, when
  ///   enabled(), if channels, height or width is 0, channels*height*width != dim, or maxShift
  ///   >= width or >= height. The message gives the values. A disabled augmentation accepts any
  ///   shape, so the shape may be left at 0 when it is not used.
  void validate(long long dim) const {
    using tsnn::detail::raise;
    constexpr const char* kCaller = "ImageAugmentation::validate()";
    if (channels < 0 || height < 0 || width < 0 || maxShift < 0) {
      raise<InvalidArgument>(kCaller, ": channels = ", channels, ", height = ", height,
                             ", width = ", width, ", maxShift = ", maxShift,
                             "; none may be negative");
    }
    if (!(maxRotation >= 0 && maxRotation <= 180))
      raise<InvalidArgument>(kCaller, ": maxRotation = ", maxRotation,
                             " degrees must be in [0, 180]");
    if (!enabled()) return;
    if (channels == 0 || height == 0 || width == 0) {
      raise<InvalidArgument>(kCaller, ": augmentation is enabled but the image shape is ", channels,
                             " x ", height, " x ", width,
                             " (channels x height x width); set all three");
    }
    // channels * height < 2^62 cannot overflow; compare the last factor by division.
    const long long ch = static_cast<long long>(channels) * height;
    if (dim <= 0 || dim % ch != 0 || dim / ch != width) {
      raise<InvalidArgument>(kCaller, ": image shape ", channels, " x ", height, " x ", width,
                             " (channels x height x width) does not match the ", dim,
                             " features of the data");
    }
    if (maxShift >= width || maxShift >= height) {
      raise<InvalidArgument>(kCaller, ": maxShift = ", maxShift, " must be below the width (",
                             width, ") and the height (", height, ")");
    }
  }
};

/// \brief The transform of one sample: mirror left-right if flip, then move dx pixels right
/// and dy pixels down (negative values move left and up). See the file comment for the formula.
struct ImageTransform {
  bool flip = false;
  int dx = 0;
  int dy = 0;
  double rotation = 0;  ///< degrees, counterclockwise

  /// \brief True when the transform leaves every image unchanged.
  bool identity() const { return !flip && dx == 0 && dy == 0 && rotation == 0; }
};

/// \brief The transform that augmentBatch applies to minibatch row \p row of step \p step.
/// \param a the augmentation (only flip and maxShift are read; maxShift must be >= 0).
/// \param seed the run's seed.
/// \param step the training step (minibatch counter).
/// \param row the sample's position in the whole minibatch (rowOffset + local row).
inline ImageTransform imageTransformFor(const ImageAugmentation& a, std::uint64_t seed,
                                        std::uint64_t step, std::uint64_t row) {
  Rng rng(mix64(mix64(mix64(seed ^ 0xA06D3E47ull) ^ step) ^ row));
  const auto m = static_cast<std::uint64_t>(a.maxShift > 0 ? a.maxShift : 0);
  ImageTransform t;
  t.flip = (rng() >> 63) != 0 && a.flip;
  t.dx = static_cast<int>(rng.below(2 * m + 1)) - static_cast<int>(m);
  t.dy = static_cast<int>(rng.below(2 * m + 1)) - static_cast<int>(m);
  const double r = rng.uniform(-1.0, 1.0);
  t.rotation = a.maxRotation > 0 ? a.maxRotation * r : 0.0;
  return t;
}

namespace detail {

/// transformImage() with a rotation: every output pixel by the bilinear formula of the file
/// comment.
template <class Scalar>
void rotateImage(const Scalar* src, Scalar* dst, const ImageAugmentation& shape,
                 const ImageTransform& t) {
  const Eigen::Index h = shape.height, w = shape.width;
  const double theta = t.rotation * 3.14159265358979323846 / 180.0;
  const double c = std::cos(theta), s = std::sin(theta);
  const double cx = 0.5 * static_cast<double>(w - 1), cy = 0.5 * static_cast<double>(h - 1);
  for (Eigen::Index ch = 0; ch < shape.channels; ++ch) {
    const Scalar* in = src + ch * h * w;
    Scalar* out = dst + ch * h * w;
    auto pixel = [&](Eigen::Index y, Eigen::Index x) -> double {
      if (y < 0 || y >= h || x < 0 || x >= w) return 0.0;
      return static_cast<double>(in[y * w + (t.flip ? w - 1 - x : x)]);
    };
    for (Eigen::Index y = 0; y < h; ++y) {
      const double py = static_cast<double>(y - t.dy) - cy;
      for (Eigen::Index x = 0; x < w; ++x) {
        const double px = static_cast<double>(x - t.dx) - cx;
        const double u = cx + c * px - s * py, v = cy + s * px + c * py;
        const double u0 = std::floor(u), v0 = std::floor(v);
        const double fu = u - u0, fv = v - v0;
        const auto x0 = static_cast<Eigen::Index>(u0), y0 = static_cast<Eigen::Index>(v0);
        out[y * w + x] =
            static_cast<Scalar>((1 - fv) * ((1 - fu) * pixel(y0, x0) + fu * pixel(y0, x0 + 1)) +
                                fv * ((1 - fu) * pixel(y0 + 1, x0) + fu * pixel(y0 + 1, x0 + 1)));
      }
    }
  }
}

}  // namespace detail

/// \brief Applies \p t to one image: dst = t(src), by the formula in the file comment.
/// \tparam Scalar element type.
/// \param src channels*height*width pixels in CHW order.
/// \param dst output of the same size; must not overlap src.
/// \param shape the image shape (channels, height, width of an ImageAugmentation).
/// \param t the transform; shifts of a full width or height or more give an all-zero image.
template <class Scalar>
void transformImage(const Scalar* src, Scalar* dst, const ImageAugmentation& shape,
                    const ImageTransform& t) {
  if (t.rotation != 0) {
    detail::rotateImage(src, dst, shape, t);
    return;
  }
  const Eigen::Index h = shape.height;
  const Eigen::Index w = shape.width;
  const Eigen::Index dx = t.dx;
  // Output columns [x0, x1) have their source column x - dx inside the image.
  const Eigen::Index x0 = std::clamp<Eigen::Index>(dx, 0, w);
  const Eigen::Index x1 = std::clamp<Eigen::Index>(w + dx, 0, w);
  for (Eigen::Index c = 0; c < shape.channels; ++c) {
    for (Eigen::Index y = 0; y < h; ++y) {
      Scalar* out = dst + (c * h + y) * w;
      const Eigen::Index sy = y - t.dy;
      if (sy < 0 || sy >= h || x0 >= x1) {
        std::fill(out, out + w, Scalar(0));
        continue;
      }
      const Scalar* in = src + (c * h + sy) * w;
      std::fill(out, out + x0, Scalar(0));
      if (t.flip) {
        // out[x] = in[w - 1 - (x - dx)]: walk the source row backwards.
        const Eigen::Index last = w - 1 + dx;
        for (Eigen::Index x = x0; x < x1; ++x) out[x] = in[last - x];
      } else {
        std::copy(in + (x0 - dx), in + (x1 - dx), out + x0);
      }
      std::fill(out + x1, out + w, Scalar(0));
    }
  }
}

/// \brief Augments a minibatch (or a shard of one) in place: row b gets the transform
/// imageTransformFor(a, seed, step, rowOffset + b).
///
/// Cost: O(B*d). The samples are handled in tiles of 16 rows: a tile is copied to
/// sample-contiguous order (each column contributes 16 contiguous values, one cache line of
/// floats), every image of the tile is transformed there, and the tile is copied back. Tiles
/// whose transforms are all the identity are skipped. (B = 128, d = 3072 floats: about 0.5 ms on
/// one core, against 1.4 ms for an Eigen copy to a row-major matrix and back.) Serial; a
/// data-parallel trainer calls it on each thread's shard.
/// \tparam Scalar element type.
/// \param x activations, B x d column-major (row = sample, column = CHW feature); may be a block
///   of rows of a larger matrix.
/// \param a the augmentation; nothing happens unless a.enabled().
/// \param seed the run's seed.
/// \param step the training step, so each minibatch draws fresh transforms.
/// \param rowOffset position of x's first row in the whole minibatch.
/// \throws InvalidArgument as a.validate(x.cols()). Call validate before entering a parallel
///   region, so that nothing can throw inside it.
template <class Scalar>
void augmentBatch(ActivationsRef<Scalar> x, const ImageAugmentation& a, std::uint64_t seed,
                  std::uint64_t step, Eigen::Index rowOffset = 0) {
  a.validate(static_cast<long long>(x.cols()));
  if (!a.enabled() || x.rows() == 0) return;
  constexpr Eigen::Index kTile = 16;
  const Eigen::Index rows = x.rows();
  const Eigen::Index d = x.cols();
  const Eigen::Index ld = x.outerStride();
  // Tile rows are ts apart, 64 bytes more than d values: with d*sizeof(Scalar) a multiple of
  // 4096 (CIFAR-10: 3072 floats = 12 KiB) the 16 rows would otherwise share cache sets.
  const Eigen::Index ts = d + 64 / static_cast<Eigen::Index>(sizeof(Scalar));
  std::vector<Scalar> in(static_cast<std::size_t>(kTile * ts));
  std::vector<Scalar> out(static_cast<std::size_t>(kTile * ts));
  ImageTransform t[kTile];
  for (Eigen::Index b0 = 0; b0 < rows; b0 += kTile) {
    const Eigen::Index nb = std::min(kTile, rows - b0);
    bool any = false;
    for (Eigen::Index r = 0; r < nb; ++r) {
      t[r] = imageTransformFor(a, seed, step, static_cast<std::uint64_t>(rowOffset + b0 + r));
      any = any || !t[r].identity();
    }
    if (!any) continue;
    Scalar* tile = x.data() + b0;  // element (b0 + r, j) is tile[j * ld + r]
    for (Eigen::Index j = 0; j < d; ++j) {
      const Scalar* col = tile + j * ld;
      for (Eigen::Index r = 0; r < nb; ++r) in[static_cast<std::size_t>(r * ts + j)] = col[r];
    }
    for (Eigen::Index r = 0; r < nb; ++r) {
      transformImage(in.data() + r * ts, out.data() + r * ts, a, t[r]);
    }
    for (Eigen::Index j = 0; j < d; ++j) {
      Scalar* col = tile + j * ld;
      for (Eigen::Index r = 0; r < nb; ++r) col[r] = out[static_cast<std::size_t>(r * ts + j)];
    }
  }
}

/// \brief augmentBatch on a whole activation matrix (see the overload on a block).
template <class Scalar>
void augmentBatch(Activations<Scalar>& x, const ImageAugmentation& a, std::uint64_t seed,
                  std::uint64_t step, Eigen::Index rowOffset = 0) {
  augmentBatch<Scalar>(ActivationsRef<Scalar>(x), a, seed, step, rowOffset);
}

}  // namespace tsnn::data
