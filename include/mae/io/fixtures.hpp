// Runs a reference fixture folder (shared/fixtures layout: config.json, weights.safetensors,
// inputs.safetensors) and collects what the official code recorded, under the same names:
//   parity folder:   loss, pred, mask, ids_restore, ids_shuffle, latent, target, features, grad.<name>
//   training folder (config.json has "train"): loss.<i>, param.<s>.<name>, exp_avg.<name>, exp_avg_sq.<name>
// Nothing about a fixture is hard-coded: sizes, ratios, lr and accumulation come from config.json.
#pragma once
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "mae/io/weights.hpp"
#include "mae/train/train_loop.hpp"

namespace mae::io {

inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  MAE_CHECK(in.good(), "'", path, "': cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(mae::detail::cat("'", path, "': not valid JSON: ", e.what()));
  }
}

inline MaeConfig fixture_model_config(const nlohmann::json& j, const std::string& source) {
  MaeConfig c;
  c.apply_json(j, source, /*require_all=*/true, /*allow_unknown=*/true);
  c.validate();
  return c;
}

// The official schedule of a training fixture's "train" block (main_pretrain.py's lr rule).
inline LrSchedule fixture_schedule(const nlohmann::json& train, const std::string& source) {
  auto num = [&](const char* k) {
    MAE_CHECK(train.contains(k) && train[k].is_number(), source, ": train field '", k, "' missing or not a number");
    return train[k].get<double>();
  };
  auto integer = [&](const char* k) {
    MAE_CHECK(train.contains(k) && train[k].is_number_integer(), source, ": train field '", k,
              "' missing or not an integer");
    return train[k].get<Index>();
  };
  LrSchedule s;
  const Index eff_batch = integer("batch") * integer("accum_iter") * integer("world_size");
  s.lr = peak_lr(num("blr"), eff_batch);
  s.min_lr = num("min_lr");
  s.warmup_epochs = num("warmup_epochs");
  s.epochs = num("epochs");
  s.iters_per_epoch = integer("iters_per_epoch");
  s.accum_iter = integer("accum_iter");
  s.start_epoch = integer("start_epoch");
  return s;
}

// Writes every result of the fixture in `dir` into `out`. `progress` (optional) hears one line per stage.
template <class T, class B>
void run_fixture(const std::string& dir, B& be, SafeTensorsWriter& out,
                 const std::function<void(const std::string&)>& progress = {}) {
  const std::string cfg_path = dir + "/config.json";
  const nlohmann::json j = read_json_file(cfg_path);
  const MaeConfig cfg = fixture_model_config(j, cfg_path);
  const SafeTensorsFile inputs = SafeTensorsFile::load(dir + "/inputs.safetensors");
  const Index L = cfg.num_patches(), P = cfg.patch_dim(), K = cfg.len_keep(), D = cfg.embed_dim;
  const bool train = j.contains("train");
  const std::string first = train ? "imgs.0" : "imgs";
  const Index n = inputs.info(first).shape.empty() ? 0 : inputs.info(first).shape[0];
  const std::vector<Index> img_shape{n, cfg.in_chans, cfg.img_size, cfg.img_size}, noise_shape{n, L};
  MaeViT<T, B> model(cfg, be, n);
  load_weights(model, dir + "/weights.safetensors");
  auto say = [&](const std::string& s) { if (progress) progress(s); };

  if (!train) {
    const auto imgs = inputs.read_as<T>("imgs", img_shape);
    const auto noise = inputs.read_as<T>("noise", noise_shape);
    model.zero_grad();
    const T loss = model.forward(imgs.data(), noise.data());
    model.backward();
    say(mae::detail::cat("loss ", loss));
    out.add("loss", {}, &loss);
    out.add("pred", {n, L, P}, model.pred().data());
    out.add("target", {n, L, P}, model.target().data());
    out.add("mask", {n, L}, model.mask().data());
    out.add("latent", {n, 1 + K, D}, model.latent().data());
    out.add("ids_restore", {n, L}, model.ids_restore_host().data());
    out.add("ids_shuffle", {n, L}, model.ids_shuffle_host().data());
    for (const ParamInfo& p : model.table().entries())
      if (p.trainable) out.add("grad." + p.name, p.shape, model.grad(p.name).data());
    out.add("features", {n, 1 + L, D}, model.features(imgs.data(), n).data());
    return;
  }

  const nlohmann::json& tj = j["train"];
  MAE_CHECK(tj.contains("iterations") && tj["iterations"].is_number_integer(), cfg_path,
            ": train field 'iterations' missing or not an integer");
  OptimConfig opt;
  if (tj.contains("weight_decay")) opt.weight_decay = tj["weight_decay"].get<double>();
  if (tj.contains("eps")) opt.eps = tj["eps"].get<double>();
  if (tj.contains("betas")) opt.beta1 = tj["betas"].at(0).get<double>(), opt.beta2 = tj["betas"].at(1).get<double>();
  TrainLoop<T, B> loop(model, fixture_schedule(tj, cfg_path), opt);
  const Index iterations = tj["iterations"].get<Index>();
  Index step = 0;
  for (Index i = 0; i < iterations; ++i) {
    const auto imgs = inputs.read_as<T>("imgs." + std::to_string(i), img_shape);
    const auto noise = inputs.read_as<T>("noise." + std::to_string(i), noise_shape);
    const T loss = loop.iteration(imgs.data(), noise.data());
    say(mae::detail::cat("iteration ", i, ": lr ", loop.lr(), ", loss ", loss, loop.stepped() ? ", step" : ""));
    out.add("loss." + std::to_string(i), {}, &loss);
    if (!loop.stepped()) continue;
    for (const ParamInfo& p : model.table().entries())
      if (p.trainable) out.add("param." + std::to_string(step) + "." + p.name, p.shape, model.get(p.name).data());
    ++step;
  }
  for (const ParamInfo& p : model.table().entries()) {
    if (!p.trainable) continue;
    out.add("exp_avg." + p.name, p.shape, loop.exp_avg(p.name).data());
    out.add("exp_avg_sq." + p.name, p.shape, loop.exp_avg_sq(p.name).data());
  }
}

}  // namespace mae::io
