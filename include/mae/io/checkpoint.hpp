// Training checkpoints: one safetensors file holding the weights under their official names, the
// AdamW moments (`optimizer.exp_avg.<name>`, `optimizer.exp_avg_sq.<name>`) in the training dtype,
// and in __metadata__ the model config, the run config, the iteration and optimizer step counts.
// Data order, augmentation and mask noise are keyed by (seed, epoch/iteration, sample), so these
// counters are the whole RNG state: resuming continues bit for bit. Files are written to a
// temporary name and renamed, so the previous checkpoint survives a crash at any moment.
#pragma once
#include <string>

#include "mae/io/weights.hpp"
#include "mae/train/train_loop.hpp"

namespace mae::io {

inline constexpr const char* kCheckpointFormat = "mae.cpp-checkpoint-1";

struct CheckpointInfo {
  Index iteration = 0;        // iterations completed (always the start of an accumulation window)
  Index optimizer_steps = 0;  // AdamW step count
  nlohmann::json model_config, run_config;
};

template <class T, class B>
void save_checkpoint(const std::string& path, TrainLoop<T, B>& loop, Index iteration, const nlohmann::json& run_config) {
  const MaeViT<T, B>& model = loop.model();
  SafeTensorsWriter w;
  const DType dt = sizeof(T) == 8 ? DType::F64 : DType::F32;
  add_weights(model, w, dt);
  for (const ParamInfo& p : model.table().entries()) {
    if (!p.trainable) continue;
    w.add("optimizer.exp_avg." + p.name, p.shape, loop.exp_avg(p.name).data());
    w.add("optimizer.exp_avg_sq." + p.name, p.shape, loop.exp_avg_sq(p.name).data());
  }
  w.set_metadata("format", kCheckpointFormat);
  w.set_metadata("producer", std::string("mae.cpp ") + version_string);
  w.set_metadata("config", model.config().to_json().dump());
  w.set_metadata("run", run_config.dump());
  w.set_metadata("iteration", std::to_string(iteration));
  w.set_metadata("optimizer_steps", std::to_string(loop.optimizer().step_count()));
  w.set_metadata("dtype", sizeof(T) == 8 ? "f64" : "f32");
  w.write(path);
}

// Restores weights, moments and counters into `loop` (whose model must have the checkpoint's config).
template <class T, class B>
CheckpointInfo load_checkpoint(const std::string& path, TrainLoop<T, B>& loop) {
  const SafeTensorsFile f = SafeTensorsFile::load(path);
  const auto& meta = f.metadata();
  auto field = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    MAE_CHECK(it != meta.end(), "'", path, "': not a mae.cpp checkpoint (metadata has no '", key, "')");
    return it->second;
  };
  MAE_CHECK(field("format") == kCheckpointFormat, "'", path, "': checkpoint format '", field("format"), "', expected '",
            kCheckpointFormat, "'");
  CheckpointInfo info;
  try {
    info.model_config = nlohmann::json::parse(field("config"));
    info.run_config = nlohmann::json::parse(field("run"));
    info.iteration = std::stoll(field("iteration"));
    info.optimizer_steps = std::stoll(field("optimizer_steps"));
  } catch (const std::exception& e) {
    throw Error(mae::detail::cat("'", path, "': malformed checkpoint metadata: ", e.what()));
  }
  MaeViT<T, B>& model = loop.model();
  const nlohmann::json here = model.config().to_json();
  for (const auto& item : here.items())
    MAE_CHECK(info.model_config.contains(item.key()) && info.model_config[item.key()] == item.value(), "'", path,
              "': checkpoint is for another model: '", item.key(), "' is ",
              info.model_config.contains(item.key()) ? info.model_config[item.key()].dump() : "missing", " there, ",
              item.value().dump(), " here");
  MAE_CHECK(info.iteration >= 0 && info.optimizer_steps >= 0, "'", path, "': negative counters in checkpoint");
  load_weights(model, f, /*strict=*/false);
  for (const ParamInfo& p : model.table().entries()) {
    if (!p.trainable) continue;
    loop.set_exp_avg(p.name, f.read_as<T>("optimizer.exp_avg." + p.name, p.shape));
    loop.set_exp_avg_sq(p.name, f.read_as<T>("optimizer.exp_avg_sq." + p.name, p.shape));
  }
  loop.optimizer().set_step_count(info.optimizer_steps);
  loop.set_iteration_index(info.iteration);
  return info;
}

}  // namespace mae::io
