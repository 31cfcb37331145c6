#pragma once
/// \file
/// \brief Everything in the core library, for programs that would rather not pick headers. The
/// library's own headers never include this one (each includes only what it uses); the optional
/// extras (plots, PNG, progress bar, confusion matrix) are not part of it.
///
/// Layers, bottom to top (a header includes only its own layer or those below):
///   core      errors, compile-time configuration, version, batch layout, OpenMP shims, random
///   sparse    CSR/COO storage, conversion, Erdos-Renyi initialisation, kernels, pattern remaps and
///             SIMD paths (arch/), chosen at run time (simd.hpp)
///   nn        SparseLinear, activations, losses, dropout, Network
///   optim     optimisers (SGD, Adam/AdamW), which own their per-connection state
///   topology  SET, gradient regrowth, density allocation, importance pruning
///   io        byte reader/writer, CRC-32, whole-file reads, atomic files, checkpoints (format
///             and API), training records, metrics writers
///   data      datasets and their loaders, scaling, augmentation
///   training  the trainers

#include "tsnn/core/activations.hpp"
#include "tsnn/core/config.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/memory.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/core/pattern_id.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/core/version.hpp"
#include "tsnn/data/augment.hpp"
#include "tsnn/data/cifar10.hpp"
#include "tsnn/data/csv.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/data/idx.hpp"
#include "tsnn/data/libsvm.hpp"
#include "tsnn/data/standard_scaler.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/byte_io.hpp"
#include "tsnn/io/checkpoint.hpp"
#include "tsnn/io/checkpoint_codec.hpp"
#include "tsnn/io/checkpoint_format.hpp"
#include "tsnn/io/crc32.hpp"
#include "tsnn/io/file.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/io/metrics_csv.hpp"
#include "tsnn/io/metrics_json.hpp"
#include "tsnn/nn/activation.hpp"
#include "tsnn/nn/all_relu.hpp"
#include "tsnn/nn/dropout.hpp"
#include "tsnn/nn/loss.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/nn/pass_options.hpp"
#include "tsnn/nn/softmax.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/optim/adam.hpp"
#include "tsnn/optim/make_optimizer.hpp"
#include "tsnn/optim/optimizer.hpp"
#include "tsnn/optim/optimizer_state.hpp"
#include "tsnn/optim/sgd.hpp"
#include "tsnn/sparse/arch/avx2.hpp"
#include "tsnn/sparse/arch/avx512.hpp"
#include "tsnn/sparse/arch/generic.hpp"
#include "tsnn/sparse/convert.hpp"
#include "tsnn/sparse/coo_matrix.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/sparse/kernels.hpp"
#include "tsnn/sparse/pattern_remap.hpp"
#include "tsnn/sparse/simd.hpp"
#include "tsnn/topology/gradient_regrowth.hpp"
#include "tsnn/topology/importance.hpp"
#include "tsnn/topology/set.hpp"
#include "tsnn/training/data_parallel.hpp"
#include "tsnn/training/data_parallel_step.hpp"
#include "tsnn/training/epoch_loop.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/numerical_guards.hpp"
#include "tsnn/training/options.hpp"
#include "tsnn/training/preset.hpp"
#include "tsnn/training/sequential.hpp"
#include "tsnn/training/topology_step.hpp"
#include "tsnn/training/train.hpp"
#include "tsnn/training/wasap.hpp"
