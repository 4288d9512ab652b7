// Checkpoints (mae/io/checkpoint.hpp): a save/load round trip restores weights, AdamW moments and
// counters bit for bit, so a TrainLoop continues exactly; a checkpoint of another model, a truncated
// or foreign file, or a missing tensor is a mae::Error naming the file (and the field); a write
// that fails leaves the previous checkpoint byte-identical.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mae/io/checkpoint.hpp"
#include "mae/model/init.hpp"
#include "train/train_support.hpp"

using Catch::Matchers::Contains;
using mae::Index;
using mae_test::Backend;
using mae_test::error_of;
using mae_test::slurp;
using mae_test::TempDir;
namespace fs = std::filesystem;

namespace {

mae::LrSchedule tiny_schedule() {
  mae::LrSchedule s;
  s.lr = 1e-3, s.min_lr = 1e-5, s.warmup_epochs = 1, s.epochs = 3, s.iters_per_epoch = 3, s.accum_iter = 2;
  return s;
}

// Model + optimizer state for tiny_model, initialized from `seed`.
template <class T>
struct State {
  Backend be;
  mae::MaeViT<T, Backend> model;
  mae::TrainLoop<T, Backend> loop;
  explicit State(const mae::MaeConfig& cfg = mae_test::tiny_model(), std::uint64_t seed = 3, Index batch = 4)
      : model(cfg, be, batch), loop((mae::init_weights(model, seed), model), tiny_schedule()) {}

  // `count` iterations on batches drawn from Rng-free but fixed streams keyed by the iteration.
  std::vector<T> train(Index count) {
    std::vector<T> losses;
    const mae::MaeConfig& c = model.config();
    for (Index t = 0; t < count; ++t) {
      std::mt19937 gen(1000u + unsigned(loop.iteration_index()));
      std::uniform_real_distribution<double> u(0, 1);
      std::vector<T> imgs(std::size_t(model.batch() * model.image_elems())), noise(std::size_t(model.batch() * c.num_patches()));
      for (T& x : imgs) x = T(u(gen) * 2 - 1);
      for (T& x : noise) x = T(u(gen));
      losses.push_back(loop.iteration(imgs.data(), noise.data()));
    }
    return losses;
  }
};

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
void require_same_state(State<T>& a, State<T>& b) {
  for (const mae::ParamInfo& p : a.model.table().entries()) {
    INFO(p.name);
    CHECK(same_bits(a.model.get(p.name), b.model.get(p.name)));
    if (!p.trainable) continue;
    CHECK(same_bits(a.loop.exp_avg(p.name), b.loop.exp_avg(p.name)));
    CHECK(same_bits(a.loop.exp_avg_sq(p.name), b.loop.exp_avg_sq(p.name)));
  }
  CHECK(a.loop.optimizer().step_count() == b.loop.optimizer().step_count());
  CHECK(a.loop.iteration_index() == b.loop.iteration_index());
}

const nlohmann::json kRun = {{"batch", 4}, {"note", "checkpoint test"}};

}  // namespace

TEMPLATE_TEST_CASE("a checkpoint round trip restores weights, moments, step count and iteration bit for bit, "
                   "and training continues identically",
                   "[checkpoint]", float, double) {
  using T = TestType;
  TempDir tmp("ckpt_roundtrip");
  const std::string path = tmp.path("checkpoint.safetensors");
  State<T> a;
  a.train(3);  // ipe 3, accum 2: one step (after iteration 1); iteration 2 is an epoch's incomplete window
  REQUIRE(a.loop.optimizer().step_count() == 1);
  mae::io::save_checkpoint(path, a.loop, 3, kRun);
  CHECK_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));

  State<T> b(mae_test::tiny_model(), /*seed=*/99);  // different initial weights, zero moments
  const mae::io::CheckpointInfo info = mae::io::load_checkpoint(path, b.loop);
  CHECK(info.iteration == 3);
  CHECK(info.optimizer_steps == 1);
  CHECK(info.run_config == kRun);
  CHECK(info.model_config == mae_test::tiny_model().to_json());
  require_same_state(a, b);

  // the file: official weight names in the training dtype plus optimizer.exp_avg[_sq].<name>
  const auto f = mae::io::SafeTensorsFile::load(path);
  const mae::io::DType dt = sizeof(T) == 8 ? mae::io::DType::F64 : mae::io::DType::F32;
  Index trainable = 0;
  for (const mae::ParamInfo& p : a.model.table().entries()) {
    REQUIRE(f.contains(p.name));
    CHECK(f.info(p.name).dtype == dt);
    CHECK(f.info(p.name).shape == p.shape);
    if (!p.trainable) continue;
    ++trainable;
    CHECK(f.info("optimizer.exp_avg." + p.name).shape == p.shape);
    CHECK(f.info("optimizer.exp_avg_sq." + p.name).shape == p.shape);
  }
  CHECK(Index(f.names().size()) == Index(a.model.table().entries().size()) + 2 * trainable);
  CHECK(f.metadata().at("format") == mae::io::kCheckpointFormat);
  CHECK(f.metadata().at("dtype") == (sizeof(T) == 8 ? "f64" : "f32"));

  // both continue over steps, an epoch boundary and an incomplete window: same losses, same state
  const std::vector<T> la = a.train(5), lb = b.train(5);
  CHECK(same_bits(la, lb));
  require_same_state(a, b);
  CHECK(a.loop.optimizer().step_count() == 3);
}

TEST_CASE("a checkpoint of another model config is refused with an error naming the file and the field",
          "[checkpoint]") {
  TempDir tmp("ckpt_other_config");
  const std::string path = tmp.path("checkpoint.safetensors");
  State<float> a;
  a.train(2);
  mae::io::save_checkpoint(path, a.loop, 2, kRun);
  const std::string before = slurp(path);

  mae::MaeConfig wider = mae_test::tiny_model();
  wider.embed_dim = 32;
  State<float> b(wider);
  const std::string e1 = error_of([&] { mae::io::load_checkpoint(path, b.loop); });
  CHECK_THAT(e1, Contains(path) && Contains("'embed_dim'") && Contains("another model"));

  mae::MaeConfig deeper = mae_test::tiny_model();
  deeper.decoder_depth = 2;
  State<float> c(deeper);
  CHECK_THAT(error_of([&] { mae::io::load_checkpoint(path, c.loop); }), Contains(path) && Contains("'decoder_depth'"));

  mae::MaeConfig masked = mae_test::tiny_model();
  masked.mask_ratio = 0.5;  // same shapes, another model all the same
  State<float> d(masked);
  CHECK_THAT(error_of([&] { mae::io::load_checkpoint(path, d.loop); }), Contains("'mask_ratio'"));
  CHECK(slurp(path) == before);
}

TEST_CASE("a truncated, missing or foreign checkpoint is an error naming the file", "[checkpoint]") {
  TempDir tmp("ckpt_bad_files");
  const std::string good = tmp.path("checkpoint.safetensors");
  State<float> a;
  a.train(2);
  mae::io::save_checkpoint(good, a.loop, 2, kRun);
  const std::string bytes = slurp(good);
  State<float> b;

  for (const std::size_t keep : {std::size_t(0), std::size_t(5), std::size_t(20), bytes.size() / 2, bytes.size() - 1}) {
    const std::string cut = tmp.path("cut_" + std::to_string(keep) + ".safetensors");
    mae_test::write_bytes(cut, bytes.substr(0, keep));
    INFO("truncated to " << keep << " of " << bytes.size() << " bytes");
    CHECK_THAT(error_of([&] { mae::io::load_checkpoint(cut, b.loop); }), Contains(cut));
  }

  const std::string missing = tmp.path("no_such_checkpoint.safetensors");
  CHECK_THAT(error_of([&] { mae::io::load_checkpoint(missing, b.loop); }), Contains(missing));

  // weights only (model.safetensors) is not a checkpoint: no moments, no counters
  const std::string weights = tmp.path("model.safetensors");
  mae::io::save_weights(a.model, weights);
  CHECK_THAT(error_of([&] { mae::io::load_checkpoint(weights, b.loop); }), Contains(weights) && Contains("format"));

  // a checkpoint that lost one moment tensor names the tensor
  const std::string holed = tmp.path("holed.safetensors");
  {
    const auto f = mae::io::SafeTensorsFile::load(good);
    mae::io::SafeTensorsWriter w;
    for (const std::string& n : f.names())
      if (n != "optimizer.exp_avg_sq.blocks.0.attn.qkv.weight") w.add(n, f.info(n).dtype, f.info(n).shape, f.raw(n));
    for (const auto& [k, v] : f.metadata()) w.set_metadata(k, v);
    w.write(holed);
  }
  CHECK_THAT(error_of([&] { mae::io::load_checkpoint(holed, b.loop); }),
             Contains(holed) && Contains("optimizer.exp_avg_sq.blocks.0.attn.qkv.weight"));
  CHECK(slurp(good) == bytes);
}

TEST_CASE("a checkpoint write that fails leaves the previous checkpoint byte-identical and no temporary file",
          "[checkpoint]") {
  TempDir tmp("ckpt_atomic");
  const std::string path = tmp.path("checkpoint.safetensors");
  State<float> a;
  a.train(2);
  mae::io::save_checkpoint(path, a.loop, 2, kRun);
  const std::string before = slurp(path);
  a.train(2);

  // the temporary name is taken by a non-empty folder: the new file cannot even be created
  const fs::path blocker = path + ".tmp." + std::to_string(::getpid());
  fs::create_directories(blocker / "occupied");
  CHECK_THAT(error_of([&] { mae::io::save_checkpoint(path, a.loop, 4, kRun); }), Contains(path));
  CHECK(slurp(path) == before);
  State<float> b;
  CHECK(mae::io::load_checkpoint(path, b.loop).iteration == 2);
  fs::remove_all(blocker);

  // a folder that cannot exist (its parent is a regular file)
  mae_test::write_bytes(tmp.path("plain_file"), "x");
  const std::string impossible = tmp.path("plain_file/checkpoint.safetensors");
  CHECK_THAT(error_of([&] { mae::io::save_checkpoint(impossible, a.loop, 4, kRun); }), Contains(impossible));

  // and once the way is clear the new checkpoint replaces the old one, leaving nothing else behind
  mae::io::save_checkpoint(path, a.loop, 4, kRun);
  CHECK(mae::io::load_checkpoint(path, b.loop).iteration == 4);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.dir)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"checkpoint.safetensors", "plain_file"});
}
