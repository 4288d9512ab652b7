// Run configuration (mae/train/config.hpp): presets with the paper's sizes, JSON files applied on
// top of a preset, and errors that name the field for unknown fields, wrong types, unknown presets
// and invalid values.
#include <catch2/catch.hpp>

#include <string>

#include "mae/train/config.hpp"
#include "train/train_support.hpp"

using Catch::Matchers::Contains;
using mae::TrainConfig;
using mae_test::error_of;
using mae_test::TempDir;
using nlohmann::json;

namespace {

TrainConfig applied(const json& j, const std::string& preset = "fmnist_tiny") {
  TrainConfig c = mae::preset_config(preset);
  mae::apply_config_json(c, j, "'test.json'");
  return c;
}

std::string apply_error(const json& j) {
  return error_of([&] { applied(j); });
}

std::string validate_error(const TrainConfig& c) {
  return error_of([&] { c.validate(); });
}

}  // namespace

TEST_CASE("presets have the paper's sizes: ViT-B/16, L/16, H/14 with a 512 x 8 x 16 decoder", "[config]") {
  struct Want {
    const char* name;
    mae::Index width, depth, heads, patch;
  };
  for (const Want& w : {Want{"vit_base_patch16", 768, 12, 12, 16}, Want{"vit_large_patch16", 1024, 24, 16, 16},
                        Want{"vit_huge_patch14", 1280, 32, 16, 14}}) {
    INFO(w.name);
    const TrainConfig c = mae::preset_config(w.name);
    const mae::MaeConfig& m = c.model;
    CHECK(c.preset == w.name);
    CHECK(m.img_size == 224);
    CHECK(m.in_chans == 3);
    CHECK(m.patch_size == w.patch);
    CHECK(m.embed_dim == w.width);
    CHECK(m.depth == w.depth);
    CHECK(m.num_heads == w.heads);
    CHECK(m.decoder_embed_dim == 512);
    CHECK(m.decoder_depth == 8);
    CHECK(m.decoder_num_heads == 16);
    CHECK(m.mlp_ratio == 4.0);
    CHECK(m.mask_ratio == 0.75);
    CHECK(m.norm_pix_loss);
    // the paper's recipe: 800 epochs, 40 warmup, blr 1.5e-4
    CHECK(c.epochs == 800);
    CHECK(c.warmup_epochs == 40);
    CHECK(c.blr == 1.5e-4);
    CHECK(c.weight_decay == 0.05);
    TrainConfig runnable = c;
    runnable.data = "/some/imagenet";
    CHECK_NOTHROW(runnable.validate());
  }
  const TrainConfig tiny = mae::preset_config("fmnist_tiny");
  CHECK(tiny.model.img_size == 28);
  CHECK(tiny.model.in_chans == 1);
  CHECK_NOTHROW(tiny.validate());
  CHECK(TrainConfig{}.to_json() == tiny.to_json());  // the defaults are the default preset
  CHECK_THAT(error_of([] { mae::preset_config("vit_gigantic"); }),
             Contains("unknown preset 'vit_gigantic'") && Contains("vit_base_patch16"));
}

TEST_CASE("an unknown config field is an error naming the field and the file", "[config]") {
  CHECK_THAT(apply_error({{"epochz", 3}}), Contains("'test.json'") && Contains("unknown config field 'epochz'"));
  CHECK_THAT(apply_error({{"model", {{"embed_dimm", 64}}}}), Contains("'test.json'") && Contains("'embed_dimm'"));
  CHECK_THAT(apply_error({{"model", {{"img_size", 28}, {"extra", true}}}}), Contains("'extra'"));
  CHECK_THAT(apply_error(json::array({1, 2})), Contains("'test.json'") && Contains("JSON object"));
  CHECK_THAT(apply_error({{"model", 5}}), Contains("model") && Contains("JSON object"));
}

TEST_CASE("an ill-typed config field is an error naming the field", "[config]") {
  struct Bad {
    json j;
    const char* field;
  };
  const Bad cases[] = {
      {{{"epochs", "10"}}, "'epochs'"},              // string for int
      {{{"epochs", 2.5}}, "'epochs'"},               // float for int
      {{{"batch", nullptr}}, "'batch'"},             // null for int
      {{{"seed", -1}}, "'seed'"},                    // negative for unsigned
      {{{"threads", true}}, "'threads'"},            // bool for int
      {{{"augment", 1}}, "'augment'"},               // int for bool
      {{{"skip_bad_images", "yes"}}, "'skip_bad_images'"},
      {{{"blr", "1e-3"}}, "'blr'"},                  // string for number
      {{{"data", 3}}, "'data'"},                     // number for string
      {{{"mean", json::array({"a"})}}, "'mean'"},               // array of strings for array of numbers
      {{{"std", 0.5}}, "'std'"},                     // number for array
      {{{"preset", 3}}, "'preset'"},
      {{{"model", {{"embed_dim", 1.5}}}}, "'embed_dim'"},
      {{{"model", {{"depth", "2"}}}}, "'depth'"},
      {{{"model", {{"mask_ratio", "0.5"}}}}, "'mask_ratio'"},
      {{{"model", {{"norm_pix_loss", 1}}}}, "'norm_pix_loss'"},
  };
  for (const Bad& b : cases) {
    INFO(b.j.dump());
    CHECK_THAT(apply_error(b.j), Contains(b.field) && Contains("'test.json'"));
  }
  // an integer is a fine value for a real field
  CHECK(applied({{"blr", 1}}).blr == 1.0);
}

TEST_CASE("an unknown preset in a file is an error naming the field and the preset", "[config]") {
  CHECK_THAT(apply_error({{"preset", "vit_tiny"}}),
             Contains("'test.json'") && Contains("'preset'") && Contains("unknown preset 'vit_tiny'"));
}

TEST_CASE("invalid values are errors naming the field", "[config]") {
  auto with = [](auto change) {
    TrainConfig c = mae::preset_config("fmnist_tiny");
    change(c);
    return validate_error(c);
  };
  CHECK_THAT(with([](TrainConfig& c) { c.model.patch_size = 5; }), Contains("'patch_size'") && Contains("'img_size'"));
  CHECK_THAT(with([](TrainConfig& c) { c.model.num_heads = 3; }), Contains("'num_heads'") && Contains("'embed_dim'"));
  CHECK_THAT(with([](TrainConfig& c) { c.model.decoder_num_heads = 5; }), Contains("'decoder_num_heads'"));
  CHECK_THAT(with([](TrainConfig& c) { c.model.embed_dim = 0; }), Contains("'embed_dim'"));
  CHECK_THAT(with([](TrainConfig& c) { c.model.mask_ratio = 1.5; }), Contains("'mask_ratio'"));
  CHECK_THAT(with([](TrainConfig& c) { c.model.in_chans = 2; }), Contains("'in_chans'"));
  CHECK_THAT(with([](TrainConfig& c) { c.epochs = 0; }), Contains("'epochs'"));
  CHECK_THAT(with([](TrainConfig& c) { c.warmup_epochs = c.epochs; }), Contains("'warmup_epochs'"));
  CHECK_THAT(with([](TrainConfig& c) { c.batch = 0; }), Contains("'batch'"));
  CHECK_THAT(with([](TrainConfig& c) { c.accum_iter = 0; }), Contains("'accum_iter'"));
  CHECK_THAT(with([](TrainConfig& c) { c.blr = 0, c.lr = 0; }), Contains("'blr'"));
  CHECK_THAT(with([](TrainConfig& c) { c.max_steps = -1; }), Contains("'max_steps'"));
  CHECK_THAT(with([](TrainConfig& c) { c.log_every = 0; }), Contains("'log_every'"));
  CHECK_THAT(with([](TrainConfig& c) { c.mean = {0.5, 0.5}, c.std = {0.2, 0.2}; }), Contains("'mean'"));
  CHECK_THAT(with([](TrainConfig& c) { c.mean = {0.5}, c.std = {0}; }), Contains("'std'"));
  CHECK_THAT(with([](TrainConfig& c) { c.dtype = "f16"; }), Contains("'dtype'") && Contains("f16"));
  CHECK_THAT(with([](TrainConfig& c) { c.decode_threads = 0; }), Contains("'decode_threads'"));
  // and the same through a file: the value is applied, then validation names the field
  CHECK_THAT(validate_error(applied({{"model", {{"patch_size", 5}}}})), Contains("'patch_size'"));
}

TEST_CASE("a JSON file applies its preset, then its overrides; without a preset it starts from fmnist_tiny",
          "[config]") {
  TempDir tmp("config_file");
  const std::string file = tmp.path("run.json");
  mae_test::write_bytes(file, R"({ "preset": "vit_base_patch16", "epochs": 5, "data": "/data/in1k",
                                   "model": { "mask_ratio": 0.5, "decoder_depth": 4 } })");
  const TrainConfig c = mae::load_config_file(file);
  CHECK(c.preset == "vit_base_patch16");
  CHECK(c.model.embed_dim == 768);
  CHECK(c.model.depth == 12);
  CHECK(c.model.decoder_embed_dim == 512);
  CHECK(c.model.decoder_depth == 4);
  CHECK(c.model.mask_ratio == 0.5);
  CHECK(c.epochs == 5);
  CHECK(c.warmup_epochs == 40);  // kept from the preset
  CHECK(c.blr == 1.5e-4);
  CHECK(c.data == "/data/in1k");

  const std::string plain = tmp.path("plain.json");
  mae_test::write_bytes(plain, R"({ "epochs": 2, "model": { "embed_dim": 64 } })");
  const TrainConfig p = mae::load_config_file(plain);
  const mae::MaeConfig tiny = mae::preset_config("fmnist_tiny").model;
  CHECK(p.preset == "fmnist_tiny");
  CHECK(p.model.img_size == tiny.img_size);
  CHECK(p.model.patch_size == tiny.patch_size);
  CHECK(p.model.in_chans == tiny.in_chans);
  CHECK(p.model.depth == tiny.depth);
  CHECK(p.model.embed_dim == 64);
  CHECK(p.epochs == 2);
  CHECK_NOTHROW(p.validate());

  const std::string bad = tmp.path("bad.json");
  mae_test::write_bytes(bad, R"({ "epochs": 2, "batchsize": 64 })");
  CHECK_THAT(error_of([&] { mae::load_config_file(bad); }), Contains(bad) && Contains("'batchsize'"));
  const std::string typo = tmp.path("typo.json");
  mae_test::write_bytes(typo, R"({ "epochs": "two" })");
  CHECK_THAT(error_of([&] { mae::load_config_file(typo); }), Contains(typo) && Contains("'epochs'"));
  const std::string broken = tmp.path("broken.json");
  mae_test::write_bytes(broken, R"({ "epochs": 2, )");
  CHECK_THAT(error_of([&] { mae::load_config_file(broken); }), Contains(broken) && Contains("JSON"));
  const std::string missing = tmp.path("missing.json");
  CHECK_THAT(error_of([&] { mae::load_config_file(missing); }), Contains(missing));
}

TEST_CASE("to_json then apply_config_json reproduces every field, for every preset", "[config]") {
  for (const char* name : {"fmnist_tiny", "vit_base_patch16", "vit_large_patch16", "vit_huge_patch14"}) {
    INFO(name);
    TrainConfig c = mae::preset_config(name);
    c.data = "/x/y", c.out = "/tmp/out", c.epochs = 7, c.warmup_epochs = 2, c.batch = 3, c.accum_iter = 5;
    c.blr = 1.25e-4, c.lr = 3e-4, c.min_lr = 1e-6, c.weight_decay = 0.1, c.seed = 42, c.max_steps = 9;
    c.threads = 2, c.log_every = 4, c.augment = false, c.skip_bad_images = true, c.decode_threads = 3;
    c.recon_images = 1, c.dtype = "f64";
    c.mean = std::vector<double>(std::size_t(c.model.in_chans), 0.25);
    c.std = std::vector<double>(std::size_t(c.model.in_chans), 0.5);
    c.model.mask_ratio = 0.6, c.model.norm_pix_loss = false, c.model.mlp_ratio = 2.0;

    TrainConfig back = mae::preset_config("fmnist_tiny");
    mae::apply_config_json(back, json::parse(c.to_json().dump()), "'round trip'");
    CHECK(back.to_json() == c.to_json());
    CHECK_NOTHROW(back.validate());
  }
}
