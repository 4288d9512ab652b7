// Bad input is a mae::Error that names the file, tensor or field and says what was expected.
#include <filesystem>
#include <fstream>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/io/weights.hpp"
#include "support/compare.hpp"

namespace fs = std::filesystem;
using Catch::Contains;

namespace {
mae::MaeConfig tiny() {
  mae::MaeConfig c;
  c.img_size = 8, c.patch_size = 2, c.in_chans = 1;
  c.embed_dim = 8, c.depth = 1, c.num_heads = 2;
  c.decoder_embed_dim = 8, c.decoder_depth = 1, c.decoder_num_heads = 2;
  c.mlp_ratio = 2;
  return c;
}
std::string temp_dir() {
  const fs::path p = fs::temp_directory_path() / ("mae_errors_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p.string();
}
}  // namespace

TEST_CASE("model config JSON: a missing or ill-typed field is an error naming the field", "[errors][config]") {
  nlohmann::json j = tiny().to_json();
  mae::MaeConfig c;
  c.apply_json(j, "cfg.json", true, false);
  CHECK(c.to_json() == j);
  nlohmann::json missing = j;
  missing.erase("decoder_depth");
  CHECK_THROWS_WITH(c.apply_json(missing, "cfg.json", true, false), Contains("cfg.json") && Contains("'decoder_depth'"));
  nlohmann::json typed = j;
  typed["embed_dim"] = "32";
  CHECK_THROWS_WITH(c.apply_json(typed, "cfg.json", true, false), Contains("'embed_dim'") && Contains("integer"));
  typed = j;
  typed["depth"] = 1.5;
  CHECK_THROWS_WITH(c.apply_json(typed, "cfg.json", true, false), Contains("'depth'"));
  typed = j;
  typed["norm_pix_loss"] = 1;
  CHECK_THROWS_WITH(c.apply_json(typed, "cfg.json", true, false), Contains("'norm_pix_loss'"));
  nlohmann::json unknown = j;
  unknown["embed_dimm"] = 8;
  CHECK_THROWS_WITH(c.apply_json(unknown, "cfg.json", true, false), Contains("unknown") && Contains("'embed_dimm'"));
  CHECK_NOTHROW(c.apply_json(unknown, "cfg.json", true, true));  // fixtures carry extra keys
}

TEST_CASE("model config: sizes that do not fit together are errors naming both numbers", "[errors][config]") {
  mae::MaeConfig c = tiny();
  c.patch_size = 3;
  CHECK_THROWS_WITH(c.validate(), Contains("'patch_size' 3") && Contains("'img_size' 8"));
  c = tiny();
  c.num_heads = 3;
  CHECK_THROWS_WITH(c.validate(), Contains("'num_heads' 3") && Contains("'embed_dim' 8"));
  c = tiny();
  c.decoder_num_heads = 3;
  CHECK_THROWS_WITH(c.validate(), Contains("'decoder_num_heads' 3"));
  c = tiny();
  c.embed_dim = 6, c.num_heads = 2;
  CHECK_THROWS_WITH(c.validate(), Contains("multiple of 4"));
  c = tiny();
  c.mask_ratio = 1.5;
  CHECK_THROWS_WITH(c.validate(), Contains("'mask_ratio'"));
  c.mask_ratio = 1.0;  // upstream allows it: only the cls token is encoded
  CHECK_NOTHROW(c.validate());
  c = tiny();
  c.mask_ratio = 0.01;  // int(16 * 0.99) = 15 kept, one removed: valid
  CHECK_NOTHROW(c.validate());
  c.mask_ratio = 0.0;  // nothing removed: the loss is undefined
  CHECK_THROWS_WITH(c.validate(), Contains("removes no patch"));
  mae::CpuEigen be;
  CHECK_THROWS_AS((mae::MaeViT<float, mae::CpuEigen>(c, be, 2)), mae::Error);
}

TEST_CASE("loading weights: missing tensor, wrong shape, wrong dtype, extra tensor, bad file", "[errors][io]") {
  const std::string dir = temp_dir();
  mae::CpuEigen be;
  mae::MaeViT<float, mae::CpuEigen> model(tiny(), be, 2);
  const std::string good = dir + "/good.safetensors";
  mae::io::save_weights(model, good);
  CHECK_NOTHROW(mae::io::load_weights(model, good));

  auto write_variant = [&](const std::string& name, auto&& edit) {
    mae::io::SafeTensorsWriter w;
    const auto f = mae::io::SafeTensorsFile::load(good);
    for (const std::string& t : f.names()) {
      const auto& info = f.info(t);
      if (!edit(w, t, info)) w.add(t, info.dtype, info.shape, f.raw(t));
    }
    const std::string path = dir + "/" + name + ".safetensors";
    w.write(path);
    return path;
  };
  const std::string missing = write_variant("missing", [](auto&, const std::string& t, const auto&) {
    return t == "blocks.0.norm1.weight";  // dropped
  });
  CHECK_THROWS_WITH(mae::io::load_weights(model, missing),
                    Contains("missing.safetensors") && Contains("'blocks.0.norm1.weight'") && Contains("(8)"));
  const std::string shape = write_variant("shape", [](auto& w, const std::string& t, const auto&) {
    if (t != "decoder_pred.weight") return false;
    std::vector<float> v(4 * 4, 0.f);
    w.add(t, {4, 4}, v.data());
    return true;
  });
  CHECK_THROWS_WITH(mae::io::load_weights(model, shape), Contains("shape.safetensors") &&
                                                             Contains("'decoder_pred.weight' has shape (4, 4)") &&
                                                             Contains("expected (4, 8)"));
  const std::string dtype = write_variant("dtype", [](auto& w, const std::string& t, const auto& info) {
    if (t != "norm.bias") return false;
    std::vector<std::int64_t> v(8, 1);
    w.add(t, info.shape, v.data());
    return true;
  });
  CHECK_THROWS_WITH(mae::io::load_weights(model, dtype), Contains("'norm.bias' has dtype I64"));
  const std::string extra = write_variant("extra", [](auto& w, const std::string& t, const auto&) {
    if (t != "norm.bias") return false;
    std::vector<float> v(8, 0.f);
    w.add("norm.bias", {8}, v.data());
    w.add("head.weight", {8}, v.data());
    return true;
  });
  CHECK_THROWS_WITH(mae::io::load_weights(model, extra), Contains("'head.weight'") && Contains("another config"));
  CHECK_NOTHROW(mae::io::load_weights(model, extra, /*strict=*/false));

  // a weights file cut short anywhere is an error naming it, never a crash
  const auto size = fs::file_size(good);
  const std::string cut = dir + "/cut.safetensors";
  for (std::uintmax_t keep : {std::uintmax_t(0), std::uintmax_t(7), std::uintmax_t(60), size / 2, size - 1}) {
    fs::copy_file(good, cut, fs::copy_options::overwrite_existing);
    fs::resize_file(cut, keep);
    CHECK_THROWS_WITH(mae::io::load_weights(model, cut), Contains("cut.safetensors"));
  }
  CHECK_THROWS_WITH(mae::io::load_weights(model, dir + "/nope.safetensors"), Contains("nope.safetensors"));

  // the config travels with the weights; a file without it says so
  CHECK(mae::io::model_config(mae::io::SafeTensorsFile::load(good)).to_json() == tiny().to_json());
  CHECK_THROWS_WITH(mae::io::model_config(mae::io::SafeTensorsFile::load(missing)),
                    Contains("missing.safetensors") && Contains("'config'"));
  fs::remove_all(dir);
}
