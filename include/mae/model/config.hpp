// MAE model configuration: the constructor arguments of the official MaskedAutoencoderViT, the
// derived sizes, validation with messages that name the field, and JSON in/out (nlohmann/json).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "mae/layers/random_masking.hpp"

namespace mae {

struct MaeConfig {
  Index img_size = 224, patch_size = 16, in_chans = 3;
  Index embed_dim = 1024, depth = 24, num_heads = 16;
  Index decoder_embed_dim = 512, decoder_depth = 8, decoder_num_heads = 16;
  double mlp_ratio = 4.0;
  bool norm_pix_loss = false;
  double mask_ratio = 0.75;
  double layernorm_eps = 1e-6;

  Index grid_size() const { return img_size / patch_size; }
  Index num_patches() const { return grid_size() * grid_size(); }
  Index patch_dim() const { return patch_size * patch_size * in_chans; }
  Index len_keep() const { return mae::len_keep(num_patches(), mask_ratio); }
  Index mlp_hidden() const { return static_cast<Index>(double(embed_dim) * mlp_ratio); }
  Index decoder_mlp_hidden() const { return static_cast<Index>(double(decoder_embed_dim) * mlp_ratio); }

  void validate() const {
    auto positive = [](const char* field, Index v) { MAE_CHECK(v > 0, "model config: '", field, "' must be positive, got ", v); };
    positive("img_size", img_size);
    positive("patch_size", patch_size);
    positive("in_chans", in_chans);
    positive("embed_dim", embed_dim);
    MAE_CHECK(depth >= 0, "model config: 'depth' must be >= 0, got ", depth);  // 0: no blocks, as upstream allows
    positive("num_heads", num_heads);
    positive("decoder_embed_dim", decoder_embed_dim);
    MAE_CHECK(decoder_depth >= 0, "model config: 'decoder_depth' must be >= 0, got ", decoder_depth);
    positive("decoder_num_heads", decoder_num_heads);
    MAE_CHECK(img_size % patch_size == 0, "model config: 'patch_size' ", patch_size, " does not divide 'img_size' ", img_size);
    MAE_CHECK(embed_dim % num_heads == 0, "model config: 'num_heads' ", num_heads, " does not divide 'embed_dim' ", embed_dim);
    MAE_CHECK(decoder_embed_dim % decoder_num_heads == 0, "model config: 'decoder_num_heads' ", decoder_num_heads,
              " does not divide 'decoder_embed_dim' ", decoder_embed_dim);
    MAE_CHECK(embed_dim % 4 == 0, "model config: 'embed_dim' ", embed_dim, " must be a multiple of 4 (2-D sin-cos position embedding)");
    MAE_CHECK(decoder_embed_dim % 4 == 0, "model config: 'decoder_embed_dim' ", decoder_embed_dim,
              " must be a multiple of 4 (2-D sin-cos position embedding)");
    MAE_CHECK(mlp_ratio > 0 && mlp_hidden() > 0 && decoder_mlp_hidden() > 0, "model config: 'mlp_ratio' ", mlp_ratio,
              " gives an empty MLP");
    // 1.0 is valid upstream: K = 0, the encoder sees only the cls token
    MAE_CHECK(mask_ratio >= 0 && mask_ratio <= 1, "model config: 'mask_ratio' must be in [0, 1], got ", mask_ratio);
    MAE_CHECK(len_keep() < num_patches(), "model config: 'mask_ratio' ", mask_ratio, " removes no patch of ", num_patches(),
              ": the loss (mean over removed patches) is undefined");
    MAE_CHECK(!norm_pix_loss || patch_dim() > 1, "model config: 'norm_pix_loss' needs patches of more than one value");
    MAE_CHECK(layernorm_eps > 0, "model config: 'layernorm_eps' must be positive, got ", layernorm_eps);
  }

  nlohmann::json to_json() const {
    return {{"img_size", img_size}, {"patch_size", patch_size}, {"in_chans", in_chans}, {"embed_dim", embed_dim},
            {"depth", depth}, {"num_heads", num_heads}, {"decoder_embed_dim", decoder_embed_dim},
            {"decoder_depth", decoder_depth}, {"decoder_num_heads", decoder_num_heads}, {"mlp_ratio", mlp_ratio},
            {"norm_pix_loss", norm_pix_loss}, {"mask_ratio", mask_ratio}, {"layernorm_eps", layernorm_eps}};
  }

  // Sets every model field present in `j`. `source` names the file in messages. With
  // `require_all`, a missing field is an error; with `allow_unknown` false, so is a key that is not
  // a model field.
  void apply_json(const nlohmann::json& j, const std::string& source, bool require_all, bool allow_unknown) {
    MAE_CHECK(j.is_object(), source, ": model config must be a JSON object, got ", j.type_name());
    const nlohmann::json known = to_json();
    if (!allow_unknown)
      for (const auto& item : j.items())
        MAE_CHECK(known.contains(item.key()), source, ": unknown model config field '", item.key(), "'");
    auto integer = [&](const char* key, Index& out) {
      if (!j.contains(key)) {
        MAE_CHECK(!require_all, source, ": missing model config field '", key, "'");
        return;
      }
      MAE_CHECK(j[key].is_number_integer(), source, ": field '", key, "' must be an integer, got ", j[key].dump());
      out = j[key].get<Index>();
    };
    auto real = [&](const char* key, double& out) {
      if (!j.contains(key)) {
        MAE_CHECK(!require_all, source, ": missing model config field '", key, "'");
        return;
      }
      MAE_CHECK(j[key].is_number(), source, ": field '", key, "' must be a number, got ", j[key].dump());
      out = j[key].get<double>();
    };
    integer("img_size", img_size);
    integer("patch_size", patch_size);
    integer("in_chans", in_chans);
    integer("embed_dim", embed_dim);
    integer("depth", depth);
    integer("num_heads", num_heads);
    integer("decoder_embed_dim", decoder_embed_dim);
    integer("decoder_depth", decoder_depth);
    integer("decoder_num_heads", decoder_num_heads);
    real("mlp_ratio", mlp_ratio);
    real("mask_ratio", mask_ratio);
    if (j.contains("layernorm_eps")) real("layernorm_eps", layernorm_eps);  // optional: 1e-6 as MAE
    if (!j.contains("norm_pix_loss")) {
      MAE_CHECK(!require_all, source, ": missing model config field 'norm_pix_loss'");
    } else {
      MAE_CHECK(j["norm_pix_loss"].is_boolean(), source, ": field 'norm_pix_loss' must be true or false, got ",
                j["norm_pix_loss"].dump());
      norm_pix_loss = j["norm_pix_loss"].get<bool>();
    }
  }
};

}  // namespace mae
