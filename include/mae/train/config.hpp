// Pretraining configuration: the model (MaeConfig) plus data, schedule and output settings, with
// presets and JSON files whose unknown or ill-typed fields are errors naming the field.
//   { "preset": "fmnist_tiny", "model": { "embed_dim": 192, ... }, "epochs": 10, "batch": 128, ... }
// A file's values apply on top of its preset (default fmnist_tiny); command-line flags apply last.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "mae/io/fixtures.hpp"
#include "mae/model/config.hpp"

namespace mae {

// The default preset's model: 28 x 28 gray, patch 4, encoder 128 x 4 (4 heads), decoder 64 x 2 (4 heads).
inline MaeConfig fmnist_tiny_model() {
  MaeConfig m;
  m.img_size = 28, m.patch_size = 4, m.in_chans = 1;
  m.embed_dim = 128, m.depth = 4, m.num_heads = 4;
  m.decoder_embed_dim = 64, m.decoder_depth = 2, m.decoder_num_heads = 4;
  m.mlp_ratio = 4, m.norm_pix_loss = true, m.mask_ratio = 0.75;
  return m;
}

struct TrainConfig {  // defaults: the fmnist_tiny preset
  std::string preset = "fmnist_tiny";
  MaeConfig model = fmnist_tiny_model();
  std::string data = "/usr/share/datasets/fashion-mnist";  // IDX folder (MNIST family) or ImageFolder root
  std::string out = "runs/pretrain_tiny";
  Index epochs = 4, warmup_epochs = 1, batch = 128, accum_iter = 1;
  double blr = 1.5e-3, lr = 0, min_lr = 0, weight_decay = 0.05;  // lr > 0 overrides blr * eff_batch / 256
  std::uint64_t seed = 0;
  Index max_steps = 0;   // iterations to run in this invocation; 0 = until the last epoch
  int threads = 0;       // 0 = OpenMP default
  Index log_every = 25;  // iterations between progress lines / log records
  bool augment = true;   // RandomResizedCrop(scale 0.2-1, ratio 3/4-4/3) + horizontal flip
  std::vector<double> mean, std;  // empty: dataset defaults (Fashion-MNIST or ImageNet statistics)
  bool skip_bad_images = false;
  int decode_threads = 2;
  Index recon_images = 8;
  std::string dtype = "f32";  // f32 or f64

  nlohmann::json to_json() const {
    return {{"preset", preset}, {"model", model.to_json()}, {"data", data}, {"out", out}, {"epochs", epochs},
            {"warmup_epochs", warmup_epochs}, {"batch", batch}, {"accum_iter", accum_iter}, {"blr", blr}, {"lr", lr},
            {"min_lr", min_lr}, {"weight_decay", weight_decay}, {"seed", seed}, {"max_steps", max_steps},
            {"threads", threads}, {"log_every", log_every}, {"augment", augment}, {"mean", mean}, {"std", std},
            {"skip_bad_images", skip_bad_images}, {"decode_threads", decode_threads},
            {"recon_images", recon_images}, {"dtype", dtype}};
  }

  void validate() const {
    model.validate();
    MAE_CHECK(epochs > 0, "config: 'epochs' must be positive, got ", epochs);
    MAE_CHECK(warmup_epochs >= 0 && warmup_epochs < epochs, "config: 'warmup_epochs' must be in [0, epochs), got ",
              warmup_epochs);
    MAE_CHECK(batch > 0, "config: 'batch' must be positive, got ", batch);
    MAE_CHECK(accum_iter > 0, "config: 'accum_iter' must be positive, got ", accum_iter);
    MAE_CHECK(blr > 0 || lr > 0, "config: 'blr' or 'lr' must be positive");
    MAE_CHECK(min_lr >= 0 && weight_decay >= 0, "config: 'min_lr' and 'weight_decay' must be >= 0");
    MAE_CHECK(max_steps >= 0, "config: 'max_steps' must be >= 0, got ", max_steps);
    MAE_CHECK(log_every > 0, "config: 'log_every' must be positive, got ", log_every);
    MAE_CHECK(model.in_chans == 1 || model.in_chans == 3, "config: model 'in_chans' must be 1 or 3 for image data, got ",
              model.in_chans);
    MAE_CHECK(mean.size() == std.size() && (mean.empty() || Index(mean.size()) == model.in_chans),
              "config: 'mean' and 'std' need one value per channel (", model.in_chans, ")");
    for (double s : std) MAE_CHECK(s > 0, "config: 'std' values must be positive");
    MAE_CHECK(dtype == "f32" || dtype == "f64", "config: 'dtype' must be \"f32\" or \"f64\", got \"", dtype, "\"");
    MAE_CHECK(decode_threads > 0 && recon_images >= 0, "config: 'decode_threads' must be positive, 'recon_images' >= 0");
  }
};

// Named starting points. fmnist_tiny is small enough to train in minutes on two cores; the others
// are the paper's models (ViT-B/16, L/16, H/14 with the 512-wide, 8-block decoder).
inline TrainConfig preset_config(const std::string& name) {
  TrainConfig c;
  c.preset = name;
  MaeConfig& m = c.model;
  m.decoder_embed_dim = 512;
  m.decoder_depth = 8;
  m.decoder_num_heads = 16;
  m.mlp_ratio = 4;
  m.norm_pix_loss = true;
  m.mask_ratio = 0.75;
  if (name == "fmnist_tiny") {
    m = fmnist_tiny_model();
    return c;
  }
  // The paper's recipe: 800 epochs, 40 warmup, blr 1.5e-4, effective batch 4096, ImageNet at 224.
  c.data = "";
  c.epochs = 800, c.warmup_epochs = 40, c.blr = 1.5e-4, c.batch = 64, c.accum_iter = 1;
  m.img_size = 224, m.in_chans = 3, m.patch_size = 16;
  if (name == "vit_base_patch16") m.embed_dim = 768, m.depth = 12, m.num_heads = 12;
  else if (name == "vit_large_patch16") m.embed_dim = 1024, m.depth = 24, m.num_heads = 16;
  else if (name == "vit_huge_patch14") m.embed_dim = 1280, m.depth = 32, m.num_heads = 16, m.patch_size = 14;
  else throw Error(mae::detail::cat("unknown preset '", name, "' (known: fmnist_tiny, vit_base_patch16, vit_large_patch16, vit_huge_patch14)"));
  return c;
}

// Applies a JSON object (a config file) on top of `c`. `source` names the file in errors.
inline void apply_config_json(TrainConfig& c, const nlohmann::json& j, const std::string& source) {
  MAE_CHECK(j.is_object(), source, ": config must be a JSON object, got ", j.type_name());
  if (j.contains("preset")) {
    MAE_CHECK(j["preset"].is_string(), source, ": field 'preset' must be a string, got ", j["preset"].dump());
    try {
      c = preset_config(j["preset"].get<std::string>());
    } catch (const Error& e) {
      throw Error(mae::detail::cat(source, ": field 'preset': ", e.what()));
    }
  }
  const nlohmann::json known = c.to_json();
  for (const auto& item : j.items()) {
    const std::string& k = item.key();
    const nlohmann::json& v = item.value();
    MAE_CHECK(known.contains(k), source, ": unknown config field '", k, "'");
    auto need = [&](bool ok, const char* what) { MAE_CHECK(ok, source, ": field '", k, "' must be ", what, ", got ", v.dump()); };
    if (k == "preset") continue;
    if (k == "model") { c.model.apply_json(v, source + " (model)", false, false); continue; }
    const nlohmann::json& cur = known[k];
    if (cur.is_boolean()) need(v.is_boolean(), "true or false");
    else if (cur.is_number_integer() || cur.is_number_unsigned()) need(v.is_number_integer() && (k != "seed" || v.get<double>() >= 0), "an integer");
    else if (cur.is_number()) need(v.is_number(), "a number");
    else if (cur.is_string()) need(v.is_string(), "a string");
    else if (cur.is_array()) need(v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_number(); }), "an array of numbers");
  }
  auto get = [&](const char* k, auto& out) { if (j.contains(k)) out = j[k].get<std::decay_t<decltype(out)>>(); };
  get("data", c.data); get("out", c.out); get("epochs", c.epochs); get("warmup_epochs", c.warmup_epochs);
  get("batch", c.batch); get("accum_iter", c.accum_iter); get("blr", c.blr); get("lr", c.lr); get("min_lr", c.min_lr);
  get("weight_decay", c.weight_decay); get("seed", c.seed); get("max_steps", c.max_steps); get("threads", c.threads);
  get("log_every", c.log_every); get("augment", c.augment); get("mean", c.mean); get("std", c.std);
  get("skip_bad_images", c.skip_bad_images); get("decode_threads", c.decode_threads);
  get("recon_images", c.recon_images); get("dtype", c.dtype);
}

inline TrainConfig load_config_file(const std::string& path) {
  TrainConfig c = preset_config("fmnist_tiny");  // the default preset, as the header says
  apply_config_json(c, io::read_json_file(path), "'" + path + "'");
  return c;
}

}  // namespace mae
