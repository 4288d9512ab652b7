// linear_probe: what the pretrained encoder learned, measured the usual way. Loads model.safetensors
// (weights + config metadata, as pretrain_tiny writes it), runs the encoder alone on every patch of
// labelled IDX images (MaeViT::features), pools the tokens, fits a ridge-regression classifier on
// train-split features and reports test-split accuracy; --random-init does the same for an encoder
// that was never trained, the baseline the pretrained one must beat. Optionally writes the features.
//   linear_probe --model runs/pretrain_tiny/model.safetensors [--data DIR] [--train N] [--test N]
//                [--pool mean|cls] [--random-init] [--out features.safetensors]
#include <Eigen/Dense>
#include <cstdio>
#include <string>

#include "mae/backend/default.hpp"
#include "mae/data/idx.hpp"
#include "mae/data/loader.hpp"
#include "mae/data/transforms.hpp"
#include "mae/io/weights.hpp"
#include "mae/model/init.hpp"

namespace {
using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Model = mae::MaeViT<float, mae::backend::Default>;

// Pooled encoder features of the first `count` images of an IDX split: (count, D).
Matrix encode(Model& model, const std::string& images_path, mae::Index count, bool cls_pool) {
  const mae::MaeConfig& c = model.config();
  mae::IdxDataset data(images_path);
  count = std::min(count, data.size());
  const mae::Index chunk = 256, D = c.embed_dim, T = 1 + c.num_patches();
  Matrix out(count, D);
  std::vector<float> imgs;
  for (mae::Index start = 0; start < count; start += chunk) {
    const mae::Index n = std::min(chunk, count - start);
    imgs.clear();
    for (mae::Index i = 0; i < n; ++i) {
      mae::Image img = mae::resize(data.get(start + i, int(c.in_chans)), int(c.img_size));
      mae::normalize(img, mae::fashion_mnist_mean, mae::fashion_mnist_std);
      imgs.insert(imgs.end(), img.pixels.begin(), img.pixels.end());
    }
    const std::vector<float> f = model.features(imgs);  // (n, 1 + L, D)
    for (mae::Index i = 0; i < n; ++i)
      for (mae::Index d = 0; d < D; ++d) {
        double v = 0;
        if (cls_pool) v = f[(i * T) * D + d];
        else
          for (mae::Index t = 1; t < T; ++t) v += f[(i * T + t) * D + d] / double(T - 1);
        out(start + i, d) = v;
      }
  }
  return out;
}

std::vector<std::uint8_t> labels(const std::string& path, mae::Index count) {
  std::vector<std::uint8_t> y = mae::read_idx_labels(path);
  y.resize(std::min<std::size_t>(y.size(), std::size_t(count)));
  return y;
}
}  // namespace

int main(int argc, char** argv) {
  std::string model_path, data = "/usr/share/datasets/fashion-mnist", pool = "mean", out;
  mae::Index n_train = 10000, n_test = 10000;
  bool random_init = false;
  double ridge = 1e-2;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto val = [&]() -> std::string {
        if (i + 1 >= argc) throw mae::Error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--model") model_path = val();
      else if (a == "--data") data = val();
      else if (a == "--train") n_train = std::stoll(val());
      else if (a == "--test") n_test = std::stoll(val());
      else if (a == "--pool") pool = val();
      else if (a == "--ridge") ridge = std::stod(val());
      else if (a == "--random-init") random_init = true;
      else if (a == "--out") out = val();
      else if (a == "-h" || a == "--help") {
        std::puts("usage: linear_probe --model model.safetensors [--data DIR] [--train N] [--test N] [--pool mean|cls]\n"
                  "                    [--ridge L] [--random-init] [--out features.safetensors]");
        return 0;
      } else throw mae::Error("unknown option '" + a + "'");
    }
    if (model_path.empty()) throw mae::Error("--model is required (a model.safetensors written by pretrain_tiny)");
    if (pool != "mean" && pool != "cls") throw mae::Error("--pool must be mean or cls, got '" + pool + "'");
    const auto file = mae::io::SafeTensorsFile::load(model_path);
    const mae::MaeConfig cfg = mae::io::model_config(file);
    mae::backend::Default be;
    Model model(cfg, be, 1);
    if (random_init) mae::init_weights(model, 0);
    else mae::io::load_weights(model, file);

    const Matrix xtr = encode(model, mae::find_fashion_mnist(data, true), n_train, pool == "cls");
    const Matrix xte = encode(model, mae::find_fashion_mnist(data, false), n_test, pool == "cls");
    const auto ytr = labels(mae::find_fashion_mnist(data, true, true), xtr.rows());
    const auto yte = labels(mae::find_fashion_mnist(data, false, true), xte.rows());
    // standardize with train statistics, then ridge regression onto one-hot labels
    const Eigen::RowVectorXd mu = xtr.colwise().mean();
    const Eigen::RowVectorXd sd =
        ((xtr.rowwise() - mu).array().square().colwise().mean().sqrt() + 1e-8).matrix();
    auto standardize = [&](const Matrix& x) {
      Matrix z = (x.rowwise() - mu).array().rowwise() / sd.array();
      Matrix with_bias(z.rows(), z.cols() + 1);
      with_bias << z, Eigen::VectorXd::Ones(z.rows());
      return with_bias;
    };
    const Matrix ztr = standardize(xtr), zte = standardize(xte);
    const int classes = 1 + *std::max_element(ytr.begin(), ytr.end());
    Matrix onehot = Matrix::Zero(ztr.rows(), classes);
    for (Eigen::Index i = 0; i < ztr.rows(); ++i) onehot(i, ytr[i]) = 1;
    Matrix gram = ztr.transpose() * ztr;
    gram.diagonal().array() += ridge * double(ztr.rows());
    const Matrix w = gram.ldlt().solve(ztr.transpose() * onehot);
    auto accuracy = [&](const Matrix& z, const std::vector<std::uint8_t>& y) {
      const Matrix s = z * w;
      Eigen::Index hits = 0;
      for (Eigen::Index i = 0; i < s.rows(); ++i) {
        Eigen::Index best;
        s.row(i).maxCoeff(&best);
        hits += best == y[i];
      }
      return double(hits) / double(s.rows());
    };
    std::printf("linear probe (%s encoder, %s pooling, %lld-d features, ridge %g): train accuracy %.4f, test accuracy %.4f "
                "(%lld train / %lld test images)\n",
                random_init ? "randomly initialized" : model_path.c_str(), pool.c_str(), (long long)cfg.embed_dim,
                ridge, accuracy(ztr, ytr), accuracy(zte, yte), (long long)ztr.rows(), (long long)zte.rows());
    if (!out.empty()) {
      mae::io::SafeTensorsWriter wtr;
      const std::vector<float> ftr(xtr.data(), xtr.data() + xtr.size()), fte(xte.data(), xte.data() + xte.size());
      const std::vector<std::int64_t> ltr(ytr.begin(), ytr.end()), lte(yte.begin(), yte.end());
      wtr.add("train.features", {xtr.rows(), xtr.cols()}, ftr.data());
      wtr.add("test.features", {xte.rows(), xte.cols()}, fte.data());
      wtr.add("train.labels", {xtr.rows()}, ltr.data());
      wtr.add("test.labels", {xte.rows()}, lte.data());
      wtr.set_metadata("pool", pool);
      wtr.set_metadata("model", model_path);
      wtr.write(out);
      std::printf("wrote %s\n", out.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "linear_probe: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
