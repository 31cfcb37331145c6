// Loads a checkpoint written by train_mnist or train_cifar10 (--save) and classifies a data file
// with it: IDX images (with an optional IDX labels file), a CIFAR-10 binary batch, a CSV file or
// a LIBSVM file.
// The feature scaling fitted at training time is stored in the checkpoint and applied here, so
// on the test set the accuracy printed is the one training reported for that model.

#include <cstdio>
#include <exception>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tsnn/data/cifar10.hpp"
#include "tsnn/data/csv.hpp"
#include "tsnn/data/idx.hpp"
#include "tsnn/data/libsvm.hpp"
#include "tsnn/data/standard_scaler.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/checkpoint.hpp"
#include "tsnn/extras/confusion.hpp"
#include "tsnn/nn/network.hpp"

int main(int argc, char** argv) {
  cli::Parser p("predict", "Classify a data file with a model saved by train_mnist/train_cifar10.");
  p.option("model", "FILE", "", "checkpoint written with --save (required)");
  p.option("images", "FILE", "", "IDX images (raw or .gz), e.g. t10k-images-idx3-ubyte.gz");
  p.option("labels", "FILE", "", "IDX labels for --images; with them, accuracy is printed");
  p.option("cifar", "FILE", "", "a CIFAR-10 binary batch, e.g. test_batch.bin (labelled)");
  p.option("csv", "FILE", "", "CSV with a header row, numeric features and a label column");
  p.option("label-column", "NAME", "", "CSV label column by name (default: the last column)");
  p.option("libsvm", "FILE", "", "LIBSVM/SVMlight file (label idx:value ...; 1-based indices)");
  p.option("predictions", "FILE", "", "write index,predicted[,label] per sample to FILE");
  p.flag("print", "print index,predicted[,label] per sample to standard output");
  try {
    if (!p.parse(argc, argv)) return 0;
    const std::string model = p.str("model");
    if (model.empty()) throw cli::UsageError("--model FILE is required");
    const int sources = !p.str("images").empty() + !p.str("cifar").empty() +
                        !p.str("csv").empty() + !p.str("libsvm").empty();
    if (sources != 1)
      throw cli::UsageError("give exactly one of --images, --cifar, --csv, --libsvm");
    if (!p.str("labels").empty() && p.str("images").empty())
      throw cli::UsageError("--labels goes with --images");

    tsnn::Preprocessing prep;
    const tsnn::Networkf net = tsnn::loadCheckpoint<float, std::int32_t>(model, nullptr, &prep);
    tsnn::data::Datasetf data;
    bool labelled = true;
    if (!p.str("images").empty()) {
      if (!p.str("labels").empty()) {
        data = tsnn::data::loadIdxPair<float>(p.str("images"), p.str("labels"), net.outputs());
      } else {
        data.features = tsnn::data::loadIdxImages<float>(p.str("images"));
        data.labels.assign(static_cast<std::size_t>(data.features.rows()), 0);
        data.numClasses = net.outputs();
        labelled = false;
      }
    } else if (!p.str("cifar").empty()) {
      data = tsnn::data::loadCifar10Batch<float>(p.str("cifar"));
    } else if (!p.str("libsvm").empty()) {
      // Sparse rows are read into the model's input width (missing trailing features are 0).
      data = tsnn::data::loadLibsvm<float>(p.str("libsvm"), net.inputs());
    } else {
      tsnn::data::CsvOptions csv;
      csv.labelColumn = p.str("label-column");
      data = tsnn::data::loadCsv<float>(p.str("csv"), csv);
    }
    if (data.dim() != net.inputs())
      throw tsnn::InvalidArgument("tsnn: predict: the data has " + std::to_string(data.dim()) +
                                  " features, the model expects " +
                                  std::to_string(net.inputs()));
    if (!prep.mean.empty()) {
      tsnn::data::StandardScaler<float> scaler;
      scaler.setParameters(prep.mean, prep.scale);
      scaler.transform(data.features);
    }
    const std::vector<std::int32_t> predicted = net.predict(data.features);

    auto writeRows = [&](std::ostream& os) {
      os << (labelled ? "index,predicted,label\n" : "index,predicted\n");
      for (std::size_t i = 0; i < predicted.size(); ++i) {
        os << i << ',' << predicted[i];
        if (labelled) os << ',' << data.labels[i];
        os << '\n';
      }
    };
    if (!p.str("predictions").empty()) tsnn::writeFileAtomically(p.str("predictions"), writeRows);
    if (p.given("print")) {
      std::ostringstream os;
      writeRows(os);
      std::fputs(os.str().c_str(), stdout);
    }
    std::printf("%lld samples, %lld features; model: %lld hidden neurons, %lld connections\n",
                static_cast<long long>(data.size()), static_cast<long long>(data.dim()),
                net.hiddenNeurons(), net.nonZeros());
    if (labelled) {
      const auto cm = tsnn::confusionMatrix(data.labels, predicted, net.outputs());
      std::printf("confusion matrix (rows: true class)\n%s", cm.format().c_str());
      std::printf("accuracy %.4f\n", cm.accuracy());
    }
    return 0;
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "predict: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "predict: %s\n", e.what());
    return 1;
  }
}
