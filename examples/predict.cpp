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

#include "command_line.hpp"
#include "tsnn/data/cifar10.hpp"
#include "tsnn/data/csv.hpp"
#include "tsnn/data/idx.hpp"
#include "tsnn/data/libsvm.hpp"
#include "tsnn/data/standard_scaler.hpp"
#include "tsnn/extras/confusion.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/checkpoint.hpp"
#include "tsnn/nn/network.hpp"

namespace {

struct Settings {
  std::string model, images, labels, cifar, csv, labelColumn, libsvm, predictions;
  bool print = false;
};

void declare(CLI::App& app, Settings& s) {
  app.add_option("--model", s.model, "checkpoint written with --save")
      ->type_name("FILE")
      ->required();
  CLI::Option_group* source = app.add_option_group("Data", "the file to classify");
  source->require_option(1);
  CLI::Option* images = source
                            ->add_option("--images", s.images,
                                         "IDX images (raw or .gz), e.g. t10k-images-idx3-ubyte.gz")
                            ->type_name("FILE");
  source->add_option("--cifar", s.cifar, "a CIFAR-10 binary batch, e.g. test_batch.bin (labelled)")
      ->type_name("FILE");
  source->add_option("--csv", s.csv, "CSV with a header row, numeric features and a label column")
      ->type_name("FILE");
  source
      ->add_option("--libsvm", s.libsvm,
                   "LIBSVM/SVMlight file (label idx:value ...; 1-based indices)")
      ->type_name("FILE");
  app.add_option("--labels", s.labels, "IDX labels for --images; with them, accuracy is printed")
      ->type_name("FILE")
      ->needs(images);
  app.add_option("--label-column", s.labelColumn,
                 "CSV label column by name (default: the last column)")
      ->type_name("NAME");
  app.add_option("--predictions", s.predictions, "write index,predicted[,label] per sample to FILE")
      ->type_name("FILE");
  app.add_flag("--print", s.print, "print index,predicted[,label] per sample to standard output")
      ->disable_flag_override();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Classify a data file with a model saved by train_mnist/train_cifar10.", "predict");
  Settings s;
  const int status = example::parseCommandLine(app, s, declare, argc, argv);
  if (status >= 0) return status;
  try {
    tsnn::Preprocessing prep;
    const tsnn::Networkf net = tsnn::loadCheckpoint<float, std::int32_t>(s.model, nullptr, &prep);
    tsnn::data::Datasetf data;
    bool labelled = true;
    if (!s.images.empty()) {
      if (!s.labels.empty()) {
        data = tsnn::data::loadIdxPair<float>(s.images, s.labels, net.outputs());
      } else {
        data.features = tsnn::data::loadIdxImages<float>(s.images);
        data.labels.assign(static_cast<std::size_t>(data.features.rows()), 0);
        data.numClasses = net.outputs();
        labelled = false;
      }
    } else if (!s.cifar.empty()) {
      data = tsnn::data::loadCifar10Batch<float>(s.cifar);
    } else if (!s.libsvm.empty()) {
      // Sparse rows are read into the model's input width (missing trailing features are 0).
      data = tsnn::data::loadLibsvm<float>(s.libsvm, net.inputs());
    } else {
      tsnn::data::CsvOptions csv;
      csv.labelColumn = s.labelColumn;
      data = tsnn::data::loadCsv<float>(s.csv, csv);
    }
    if (data.dim() != net.inputs())
      throw tsnn::InvalidArgument("tsnn: predict: the data has " + std::to_string(data.dim()) +
                                  " features, the model expects " + std::to_string(net.inputs()));
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
    if (!s.predictions.empty()) tsnn::writeFileAtomically(s.predictions, writeRows);
    if (s.print) {
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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "predict: %s\n", e.what());
    return 1;
  }
}
