// The pretraining engine (mae/train/trainer.hpp) end to end on data sets the tests write: resuming
// after any number of iterations reproduces an uninterrupted run bit for bit; the outputs (log,
// reconstruction grids, model.safetensors with the official names) are well formed; and every bad
// input is a mae::Error naming the thing while the checkpoint already in the output folder stays
// byte-identical and loadable.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mae/train/trainer.hpp"
#include "train/train_support.hpp"

using Catch::Matchers::Contains;
using mae::Index;
using mae::TrainConfig;
using mae_test::Backend;
using mae_test::error_of;
using mae_test::raw_tensors;
using mae_test::slurp;
using mae_test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

template <class T = float>
Index run(const TrainConfig& cfg, const std::string& resume = "") {
  Backend be;
  mae::Trainer<T, Backend> trainer(cfg, be, resume);
  return trainer.run();
}

std::string ckpt_of(const TrainConfig& c) { return c.out + "/checkpoint.safetensors"; }
std::string weights_of(const TrainConfig& c) { return c.out + "/model.safetensors"; }

std::string meta(const std::string& file, const std::string& key) {
  return mae::io::SafeTensorsFile::load(file).metadata().at(key);
}

// Every line of <out>/log.jsonl, parsed.
std::vector<json> read_log(const std::string& out) {
  std::ifstream in(out + "/log.jsonl");
  REQUIRE(in.good());
  std::vector<json> records;
  for (std::string line; std::getline(in, line);) {
    INFO("log line: " << line);
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    REQUIRE_FALSE(j.is_discarded());
    REQUIRE(j.is_object());
    records.push_back(j);
  }
  return records;
}

// iteration -> loss of the step records (log_every 1: one iteration each). An iteration logged twice
// (re-run after resuming mid-window) must have logged the same loss both times.
std::map<Index, double> step_losses(const std::string& out) {
  std::map<Index, double> losses;
  for (const json& r : read_log(out)) {
    if (r.at("type") != "step") continue;
    const Index it = r.at("iteration").get<Index>();
    const double loss = r.at("loss").get<double>();
    if (losses.count(it)) CHECK(losses[it] == loss);
    losses[it] = loss;
  }
  return losses;
}

// A completed short run in <tmp>/out on 12 IDX images (3 iterations per epoch), stopped after 3
// iterations: the checkpoint and weights every bad-input test must leave untouched.
struct GoodRun {
  TempDir tmp{"trainer_good"};
  TrainConfig cfg;
  std::string ckpt_bytes, weights_bytes;
  GoodRun() {
    cfg = mae_test::tiny_run(mae_test::write_idx_folder(tmp.path("idx"), 12), tmp.path("out"));
    cfg.max_steps = 3;
    REQUIRE(run(cfg) == 3);
    ckpt_bytes = slurp(ckpt_of(cfg));
    weights_bytes = slurp(weights_of(cfg));
    REQUIRE(meta(ckpt_of(cfg), "iteration") == "3");
    cfg.max_steps = 0;
  }
  void require_untouched() const {
    CHECK(slurp(ckpt_of(cfg)) == ckpt_bytes);
    CHECK(slurp(weights_of(cfg)) == weights_bytes);
    Backend be;
    mae::MaeViT<float, Backend> model(cfg.model, be, cfg.batch);
    mae::LrSchedule s;
    s.lr = 1e-3, s.epochs = 3, s.warmup_epochs = 1, s.iters_per_epoch = 3;
    mae::TrainLoop<float, Backend> loop(model, s);
    CHECK(mae::io::load_checkpoint(ckpt_of(cfg), loop).iteration == 3);
  }
};

// The official state_dict of MaskedAutoencoderViT(cfg), written out from models_mae.py and timm's
// Block: name -> shape.
std::map<std::string, std::vector<Index>> official_state_dict(const mae::MaeConfig& m) {
  const Index D = m.embed_dim, Dd = m.decoder_embed_dim, C = m.in_chans, p = m.patch_size;
  const Index L = (m.img_size / p) * (m.img_size / p);
  std::map<std::string, std::vector<Index>> sd = {
      {"cls_token", {1, 1, D}},           {"pos_embed", {1, L + 1, D}},
      {"mask_token", {1, 1, Dd}},         {"decoder_pos_embed", {1, L + 1, Dd}},
      {"patch_embed.proj.weight", {D, C, p, p}}, {"patch_embed.proj.bias", {D}},
      {"norm.weight", {D}},               {"norm.bias", {D}},
      {"decoder_embed.weight", {Dd, D}},  {"decoder_embed.bias", {Dd}},
      {"decoder_norm.weight", {Dd}},      {"decoder_norm.bias", {Dd}},
      {"decoder_pred.weight", {p * p * C, Dd}}, {"decoder_pred.bias", {p * p * C}},
  };
  auto blocks = [&](const std::string& prefix, Index depth, Index w) {
    const Index h = Index(double(w) * m.mlp_ratio);
    for (Index i = 0; i < depth; ++i) {
      const std::string b = prefix + "." + std::to_string(i) + ".";
      sd[b + "norm1.weight"] = {w}, sd[b + "norm1.bias"] = {w};
      sd[b + "attn.qkv.weight"] = {3 * w, w}, sd[b + "attn.qkv.bias"] = {3 * w};
      sd[b + "attn.proj.weight"] = {w, w}, sd[b + "attn.proj.bias"] = {w};
      sd[b + "norm2.weight"] = {w}, sd[b + "norm2.bias"] = {w};
      sd[b + "mlp.fc1.weight"] = {h, w}, sd[b + "mlp.fc1.bias"] = {h};
      sd[b + "mlp.fc2.weight"] = {w, h}, sd[b + "mlp.fc2.bias"] = {w};
    }
  };
  blocks("blocks", m.depth, D);
  blocks("decoder_blocks", m.decoder_depth, Dd);
  return sd;
}

}  // namespace

TEMPLATE_TEST_CASE("resuming after k iterations gives bitwise the weights, moments and losses of an uninterrupted run",
                   "[trainer][resume]", float, double) {
  using T = TestType;
  TempDir tmp("trainer_resume");
  const std::string data = mae_test::write_idx_folder(tmp.path("idx"), 12);  // 3 iterations per epoch
  TrainConfig full = mae_test::tiny_run(data, tmp.path("full"));
  full.dtype = sizeof(T) == 8 ? "f64" : "f32";
  REQUIRE(run<T>(full) == 9);
  const std::string full_weights = slurp(weights_of(full));
  const auto full_ckpt = raw_tensors(ckpt_of(full));
  const auto full_losses = step_losses(full.out);
  REQUIRE(full_losses.size() == 9);
  CHECK(meta(ckpt_of(full), "iteration") == "9");

  for (const Index k : {1, 3, 4, 8}) {
    INFO("interrupted after " << k << " iterations");
    TrainConfig part = full;
    part.out = tmp.path("split_" + std::to_string(k));
    part.max_steps = k;
    REQUIRE(run<T>(part) == k);
    CHECK(meta(ckpt_of(part), "iteration") == std::to_string(k));
    TrainConfig rest = part;
    rest.max_steps = 0;
    REQUIRE(run<T>(rest, ckpt_of(part)) == 9 - k);
    CHECK(slurp(weights_of(part)) == full_weights);
    CHECK(raw_tensors(ckpt_of(part)) == full_ckpt);
    CHECK(meta(ckpt_of(part), "iteration") == "9");
    CHECK(meta(ckpt_of(part), "optimizer_steps") == meta(ckpt_of(full), "optimizer_steps"));
    CHECK(step_losses(part.out) == full_losses);
  }

  // resuming a finished run has nothing left to do
  const std::string before = slurp(ckpt_of(full));
  CHECK(run<T>(full, ckpt_of(full)) == 0);
  CHECK(slurp(ckpt_of(full)) == before);
}

TEST_CASE("with accum_iter 2 a run stopped mid-window resumes at the window start and still matches bit for bit",
          "[trainer][resume]") {
  TempDir tmp("trainer_accum");
  // 3 iterations per epoch: windows (0, 1) step, (2) is an epoch's incomplete window and never steps
  const std::string data = mae_test::write_idx_folder(tmp.path("idx"), 12);
  TrainConfig full = mae_test::tiny_run(data, tmp.path("full"));
  full.accum_iter = 2;
  REQUIRE(run(full) == 9);
  const std::string full_weights = slurp(weights_of(full));
  const auto full_ckpt = raw_tensors(ckpt_of(full));
  const auto full_losses = step_losses(full.out);
  CHECK(meta(ckpt_of(full), "optimizer_steps") == "3");

  for (Index k = 1; k < 9; ++k) {
    INFO("interrupted after " << k << " iterations");
    TrainConfig part = full;
    part.out = tmp.path("split_" + std::to_string(k));
    part.max_steps = k;
    REQUIRE(run(part) == k);
    const Index window_start = k - (k % 3) % 2;
    REQUIRE(meta(ckpt_of(part), "iteration") == std::to_string(window_start));
    TrainConfig rest = part;
    rest.max_steps = 0;
    REQUIRE(run(rest, ckpt_of(part)) == 9 - window_start);
    CHECK(slurp(weights_of(part)) == full_weights);
    CHECK(raw_tensors(ckpt_of(part)) == full_ckpt);
    CHECK(step_losses(part.out) == full_losses);
  }
}

TEST_CASE("a run writes a JSON-lines log, reconstruction grids and weights under the official state_dict names",
          "[trainer][outputs]") {
  TempDir tmp("trainer_outputs");
  const std::string root = tmp.path("folder");
  mae_test::write_image_folder(root, 4, 12, 3);  // 8 RGB images: 2 iterations per epoch
  TrainConfig cfg = mae_test::tiny_run(root, tmp.path("out"));
  cfg.model = mae_test::tiny_model(12, 4, 3);
  cfg.model.depth = 2;
  cfg.epochs = 2;
  REQUIRE(run(cfg) == 4);

  // log.jsonl: one step record per iteration, one epoch record per epoch, finite losses
  std::vector<Index> steps, epochs;
  for (const json& r : read_log(cfg.out)) {
    INFO(r.dump());
    REQUIRE(r.contains("type"));
    REQUIRE(r.contains("loss"));
    CHECK(std::isfinite(r["loss"].get<double>()));
    CHECK(std::isfinite(r["lr"].get<double>()));
    if (r["type"] == "step") {
      steps.push_back(r["iteration"].get<Index>());
      CHECK(r["images_per_s"].get<double>() > 0);
    } else {
      REQUIRE(r["type"] == "epoch");
      epochs.push_back(r["epoch"].get<Index>());
      CHECK(r["skipped_images"].get<Index>() == 0);
    }
  }
  CHECK(steps == std::vector<Index>{1, 2, 3, 4});
  CHECK(epochs == std::vector<Index>{1, 2});

  // recon_<epoch>.png: rows of (original | masked | reconstruction | pasted), upscaled to ~112 px
  const int scale = std::max(1, 112 / 12), cell = 12 * scale, gap = 2;
  for (int e = 1; e <= 2; ++e) {
    const std::string png = cfg.out + "/recon_" + std::to_string(e) + ".png";
    INFO(png);
    int w = 0, h = 0, comp = 0;
    REQUIRE(stbi_info(png.c_str(), &w, &h, &comp) == 1);
    CHECK(w == 4 * cell + 5 * gap);
    CHECK(h == int(cfg.recon_images) * cell + (int(cfg.recon_images) + 1) * gap);
    CHECK(comp == 3);
    CHECK(mae::load_image(png, 3).width == w);
  }

  // model.safetensors: exactly the official state_dict, F32, with the model config in the metadata
  const auto want = official_state_dict(cfg.model);
  const auto f = mae::io::SafeTensorsFile::load(weights_of(cfg));
  CHECK(f.names().size() == want.size());
  for (const auto& [name, shape] : want) {
    INFO(name);
    REQUIRE(f.contains(name));
    CHECK(f.info(name).dtype == mae::io::DType::F32);
    CHECK(f.info(name).shape == shape);
  }
  const json config = json::parse(f.metadata().at("config"));
  CHECK(config == cfg.model.to_json());
  mae::MaeConfig back;
  back.apply_json(config, "metadata", /*require_all=*/true, /*allow_unknown=*/false);
  CHECK(back.to_json() == cfg.model.to_json());

  // checkpoint.safetensors: the same weights plus both moments of every trainable tensor
  const auto ck = mae::io::SafeTensorsFile::load(ckpt_of(cfg));
  CHECK(ck.metadata().at("iteration") == "4");
  CHECK(ck.metadata().at("optimizer_steps") == "4");
  for (const auto& [name, shape] : want) {
    INFO(name);
    CHECK(ck.read_as<float>(name, shape) == f.read_as<float>(name, shape));
    const bool fixed = name == "pos_embed" || name == "decoder_pos_embed";
    CHECK(ck.contains("optimizer.exp_avg." + name) != fixed);
    CHECK(ck.contains("optimizer.exp_avg_sq." + name) != fixed);
  }
}

TEST_CASE("bad data, output and resume paths are errors naming the thing; the checkpoint already there survives",
          "[trainer][errors]") {
  GoodRun good;
  TrainConfig cfg = good.cfg;
  const TempDir& tmp = good.tmp;

  SECTION("missing data folder") {
    cfg.data = tmp.path("no_such_data");
    CHECK_THAT(error_of([&] { run(cfg); }), Contains(cfg.data) && Contains("does not exist"));
  }
  SECTION("empty data folder") {
    cfg.data = tmp.path("empty");
    fs::create_directories(cfg.data);
    CHECK_THAT(error_of([&] { run(cfg); }), Contains(cfg.data) && Contains("no images"));
  }
  SECTION("IDX file with a wrong magic number") {
    std::string bytes = mae_test::idx_images_bytes(12, 8, 8);
    bytes.replace(0, 4, mae_test::be32(0x00000801u));
    const std::string file = tmp.path("badmagic/train-images-idx3-ubyte");
    mae_test::write_bytes(file, bytes);
    cfg.data = tmp.path("badmagic");
    CHECK_THAT(error_of([&] { run(cfg); }), Contains(file) && Contains("magic"));
    cfg.data = file;  // the file itself
    CHECK_THAT(error_of([&] { run(cfg); }), Contains(file) && Contains("magic"));
  }
  SECTION("truncated IDX file") {
    const std::string file = tmp.path("short/train-images-idx3-ubyte");
    mae_test::write_bytes(file, mae_test::idx_images_bytes(12, 8, 8).substr(0, 16 + 100));
    cfg.data = tmp.path("short");
    CHECK_THAT(error_of([&] { run(cfg); }), Contains(file) && Contains("truncated"));
  }
  SECTION("ImageFolder with a truncated PNG, met during training or among the reconstruction images") {
    cfg.data = tmp.path("folder");
    const auto files = mae_test::write_image_folder(cfg.data, 4, 12, 1);
    for (const std::size_t bad : {std::size_t(5), std::size_t(0)}) {  // 0 is a reconstruction image
      const std::string bytes = slurp(files[bad]);
      mae_test::write_bytes(files[bad], bytes.substr(0, bytes.size() / 2));
      INFO(files[bad]);
      CHECK_THAT(error_of([&] { run(cfg); }), Contains(files[bad]));
      mae_test::write_bytes(files[bad], bytes);
    }
  }
  SECTION("output folder that cannot be created or is a file") {
    mae_test::write_bytes(tmp.path("plain_file"), "x");
    cfg.out = tmp.path("plain_file/out");
    CHECK_THAT(error_of([&] { run(cfg); }), Contains(cfg.out) && Contains("cannot create output folder"));
    cfg.out = tmp.path("plain_file");
    CHECK_THAT(error_of([&] { run(cfg); }), Contains(cfg.out) && Contains("cannot create output folder"));
  }
  SECTION("resume path that does not exist") {
    const std::string missing = tmp.path("out/no_such_checkpoint.safetensors");
    CHECK_THAT(error_of([&] { run(cfg, missing); }), Contains(missing) && Contains("does not exist"));
    cfg.out = tmp.path("fresh_out");  // checked before anything is created
    CHECK_THAT(error_of([&] { run(cfg, missing); }), Contains(missing));
    CHECK_FALSE(fs::exists(cfg.out));
  }
  SECTION("resume from a checkpoint of another model") {
    TrainConfig other = cfg;
    other.model.embed_dim = 32;
    CHECK_THAT(error_of([&] { run(other, ckpt_of(cfg)); }), Contains(ckpt_of(cfg)) && Contains("'embed_dim'"));
    other = cfg;
    other.model.norm_pix_loss = false;
    CHECK_THAT(error_of([&] { run(other, ckpt_of(cfg)); }), Contains("'norm_pix_loss'"));
  }
  SECTION("resume with another batch, seed or data set size") {
    TrainConfig other = cfg;
    other.batch = 2;
    CHECK_THAT(error_of([&] { run(other, ckpt_of(cfg)); }), Contains(ckpt_of(cfg)) && Contains("batch"));
    other = cfg;
    other.seed = 12;
    CHECK_THAT(error_of([&] { run(other, ckpt_of(cfg)); }), Contains("seed"));
    other = cfg;
    other.data = mae_test::write_idx_folder(tmp.path("idx16"), 16);
    CHECK_THAT(error_of([&] { run(other, ckpt_of(cfg)); }), Contains("dataset_images"));
  }
  SECTION("resume from a truncated checkpoint or from weights only") {
    const std::string cut = tmp.path("cut/checkpoint.safetensors");
    mae_test::write_bytes(cut, good.ckpt_bytes.substr(0, good.ckpt_bytes.size() - 3));
    CHECK_THAT(error_of([&] { run(cfg, cut); }), Contains(cut));
    CHECK_THAT(error_of([&] { run(cfg, weights_of(cfg)); }), Contains(weights_of(cfg)) && Contains("format"));
  }
  SECTION("invalid config") {
    cfg.accum_iter = 0;
    CHECK_THAT(error_of([&] { run(cfg); }), Contains("'accum_iter'"));
  }
  good.require_untouched();
}

TEST_CASE("skip_bad_images skips unreadable images, counts them in the epoch records and finishes", "[trainer][errors]") {
  TempDir tmp("trainer_skip");
  const std::string root = tmp.path("folder");
  const auto files = mae_test::write_image_folder(root, 4, 12, 1);
  for (const std::size_t bad : {std::size_t(0), std::size_t(5)}) {  // a reconstruction image and another
    const std::string bytes = slurp(files[bad]);
    mae_test::write_bytes(files[bad], bytes.substr(0, bytes.size() / 3));
  }
  TrainConfig cfg = mae_test::tiny_run(root, tmp.path("out"));
  cfg.epochs = 2;
  CHECK_THAT(error_of([&] { run(cfg); }), Contains(files[0]));
  cfg.skip_bad_images = true;
  REQUIRE(run(cfg) == 4);  // 8 images, batch 4
  Index epoch_records = 0;
  for (const json& r : read_log(cfg.out)) {
    if (r.at("type") != "epoch") continue;
    ++epoch_records;
    CHECK(r.at("skipped_images").get<Index>() > 0);
  }
  CHECK(epoch_records == 2);
  CHECK(fs::exists(cfg.out + "/recon_2.png"));
}

TEST_CASE("a NaN or Inf loss stops training naming the iteration; the checkpoint before it stays byte-identical",
          "[trainer][nan]") {
  GoodRun good;
  TrainConfig absurd = good.cfg;
  absurd.lr = 1e30;
  const std::string e = error_of([&] { run(absurd, ckpt_of(good.cfg)); });
  CHECK_THAT(e, Contains("loss is") && Contains("at iteration") && Contains(ckpt_of(good.cfg)) && Contains("unchanged"));
  good.require_untouched();
  // and it still resumes
  CHECK(run(good.cfg, ckpt_of(good.cfg)) == 6);

  // from scratch, diverging before the first checkpoint: nothing is written
  TempDir tmp("trainer_nan_fresh");
  absurd.out = tmp.path("out");
  CHECK_THAT(error_of([&] { run(absurd); }), Contains("loss is") && Contains("no checkpoint was written"));
  CHECK_FALSE(fs::exists(ckpt_of(absurd)));
}

TEST_CASE("parameters that turn non-finite in an epoch's last step do not replace the last good checkpoint",
          "[trainer][nan]") {
  TempDir tmp("trainer_inf_params");
  TrainConfig cfg = mae_test::tiny_run(mae_test::write_idx_folder(tmp.path("idx"), 4), tmp.path("out"));  // 1 it/epoch
  cfg.max_steps = 1;
  REQUIRE(run(cfg) == 1);
  const std::string before = slurp(ckpt_of(cfg));
  cfg.max_steps = 0;
  cfg.lr = 1e38;  // the step size lr / (1 - 0.9^2) overflows float: the loss of this iteration is still finite
  CHECK_THAT(error_of([&] { run(cfg, ckpt_of(cfg)); }),
             Contains("parameter '") && Contains("iteration 1") && Contains(ckpt_of(cfg)) && Contains("unchanged"));
  CHECK(slurp(ckpt_of(cfg)) == before);
}

TEST_CASE("a checkpoint whose temporary file cannot be written leaves the previous one byte-identical",
          "[trainer][errors]") {
  GoodRun good;
  const fs::path blocker = ckpt_of(good.cfg) + ".tmp." + std::to_string(::getpid());
  fs::create_directories(blocker / "occupied");
  CHECK_THAT(error_of([&] { run(good.cfg, ckpt_of(good.cfg)); }), Contains(ckpt_of(good.cfg)));
  good.require_untouched();
  fs::remove_all(blocker);
  CHECK(run(good.cfg, ckpt_of(good.cfg)) == 6);
  CHECK(meta(ckpt_of(good.cfg), "iteration") == "9");
}
