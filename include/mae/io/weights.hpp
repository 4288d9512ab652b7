// Model weights <-> safetensors files with the official PyTorch state_dict names and shapes, so a
// file written here loads name-for-name into facebookresearch/mae's MaskedAutoencoderViT and an
// official checkpoint converted to safetensors loads here.
#pragma once
#include <string>
#include <vector>

#include "mae/io/safetensors.hpp"
#include "mae/model/mae_vit.hpp"

namespace mae::io {

// Copies every tensor of the model from `f` (converted to T). A missing trainable tensor is an error;
// missing position embeddings are recomputed (they are fixed). With `strict`, a tensor in the file
// that the model does not have is an error too.
template <class T, class B>
void load_weights(MaeViT<T, B>& model, const SafeTensorsFile& f, bool strict = true) {
  for (const ParamInfo& p : model.table().entries()) {
    if (!f.contains(p.name)) {
      MAE_CHECK(!p.trainable, "'", f.path(), "': missing tensor '", p.name, "' of shape ", shape_string(p.shape));
      continue;
    }
    const DType dt = f.info(p.name).dtype;
    MAE_CHECK(dt == DType::F32 || dt == DType::F64 || dt == DType::F16 || dt == DType::BF16, "'", f.path(),
              "': tensor '", p.name, "' has dtype ", dtype_name(dt), ", expected a floating type (F32, F64, F16, BF16)");
    model.set(p.name, f.read_as<T>(p.name, p.shape));
  }
  if (!strict) return;
  for (const std::string& name : f.names())
    MAE_CHECK(model.table().contains(name), "'", f.path(), "': tensor '", name, "' is not a parameter of this model",
              " (is the file from another config?)");
}

template <class T, class B>
void load_weights(MaeViT<T, B>& model, const std::string& path, bool strict = true) {
  load_weights(model, SafeTensorsFile::load(path), strict);
}

// Adds every model tensor to `w` under `prefix + name`, stored as `dtype` (F32 or F64).
template <class T, class B>
void add_weights(const MaeViT<T, B>& model, SafeTensorsWriter& w, DType dtype = DType::F32, const std::string& prefix = "") {
  MAE_CHECK(dtype == DType::F32 || dtype == DType::F64, "weights can be written as F32 or F64, not ", dtype_name(dtype));
  for (const ParamInfo& p : model.table().entries()) {
    const std::vector<T> v = model.get(p.name);
    if (dtype == DType::F32) {
      const std::vector<float> f(v.begin(), v.end());
      w.add(prefix + p.name, p.shape, f.data());
    } else {
      const std::vector<double> d(v.begin(), v.end());
      w.add(prefix + p.name, p.shape, d.data());
    }
  }
}

// The model config stored under metadata "config" of a file written by save_weights (or a checkpoint).
inline MaeConfig model_config(const SafeTensorsFile& f) {
  const auto it = f.metadata().find("config");
  MAE_CHECK(it != f.metadata().end(), "'", f.path(), "': no model config (metadata key 'config'); was it written by mae.cpp?");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw Error(mae::detail::cat("'", f.path(), "': metadata 'config' is not valid JSON: ", e.what()));
  }
  MaeConfig c;
  c.apply_json(j, "'" + f.path() + "' (metadata 'config')", /*require_all=*/true, /*allow_unknown=*/false);
  c.validate();
  return c;
}

// model.safetensors: weights only, official names, the model config as JSON under metadata "config".
template <class T, class B>
void save_weights(const MaeViT<T, B>& model, const std::string& path, DType dtype = DType::F32) {
  SafeTensorsWriter w;
  add_weights(model, w, dtype);
  w.set_metadata("format", "pt");
  w.set_metadata("config", model.config().to_json().dump());
  w.write(path);
}

}  // namespace mae::io
