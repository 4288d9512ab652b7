// The learning-rate schedule, the step/zero-grad iterations and the parameter groups against every
// shared/fixtures/mae_train/<name>/config.json (bit-exact), plus closed-form properties.
#include <mae/optim/adamw.hpp>
#include <mae/optim/schedule.hpp>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using mae::Index;
using mae::LrSchedule;

namespace {

std::vector<fs::path> train_fixture_dirs() {
  const fs::path root = fs::path(MAE_FIXTURES_DIR) / "mae_train";
  std::vector<fs::path> dirs;
  if (fs::is_directory(root))
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory() && fs::exists(e.path() / "config.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

// Tensor name -> rank, from a safetensors header (8-byte little-endian length, then JSON).
std::map<std::string, Index> safetensors_ranks(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE(f.good());
  unsigned char len_bytes[8];
  f.read(reinterpret_cast<char*>(len_bytes), 8);
  std::uint64_t len = 0;
  for (int b = 7; b >= 0; --b) len = (len << 8) | len_bytes[b];
  std::string header(static_cast<std::size_t>(len), '\0');
  f.read(header.data(), static_cast<std::streamsize>(len));
  REQUIRE(f.good());
  std::map<std::string, Index> ranks;
  const nlohmann::json j = nlohmann::json::parse(header);
  for (const auto& [name, info] : j.items())
    if (name != "__metadata__") ranks[name] = static_cast<Index>(info.at("shape").size());
  return ranks;
}

LrSchedule schedule_from(const nlohmann::json& t) {
  const Index eff = t.at("batch").get<Index>() * t.at("accum_iter").get<Index>() * t.at("world_size").get<Index>();
  LrSchedule s;
  s.lr = mae::peak_lr(t.at("blr").get<double>(), eff);
  s.min_lr = t.at("min_lr").get<double>();
  s.warmup_epochs = t.at("warmup_epochs").get<double>();
  s.epochs = t.at("epochs").get<double>();
  s.iters_per_epoch = t.at("iters_per_epoch").get<Index>();
  s.accum_iter = t.at("accum_iter").get<Index>();
  s.start_epoch = t.at("start_epoch").get<Index>();
  return s;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST_CASE("fixtures: the mae_train folder holds at least one fixture", "[schedule][fixtures]") {
  CHECK_FALSE(train_fixture_dirs().empty());
}

TEST_CASE("fixtures: peak lr = (blr * eff_batch) / 256 equals train.lr bit for bit", "[schedule][fixtures]") {
  for (const auto& dir : train_fixture_dirs()) {
    INFO("fixture " << dir.filename().string());
    const auto t = read_json(dir / "config.json").at("train");
    const Index eff = t.at("batch").get<Index>() * t.at("accum_iter").get<Index>() * t.at("world_size").get<Index>();
    CHECK(eff == t.at("eff_batch").get<Index>());
    CHECK(same_bits(mae::peak_lr(t.at("blr").get<double>(), eff), t.at("lr").get<double>()));
  }
}

TEST_CASE("fixtures: lr_for_iteration and its epoch argument equal lr_per_iter bit for bit", "[schedule][fixtures]") {
  for (const auto& dir : train_fixture_dirs()) {
    const auto t = read_json(dir / "config.json").at("train");
    const LrSchedule s = schedule_from(t);
    const auto lrs = t.at("lr_per_iter").get<std::vector<double>>();
    const auto eargs = t.at("epoch_arg_per_iter").get<std::vector<double>>();
    const Index iters = t.at("iterations").get<Index>();
    REQUIRE(Index(lrs.size()) == iters);
    REQUIRE(Index(eargs.size()) == iters);
    for (Index i = 0; i < iters; ++i) {
      INFO("fixture " << dir.filename().string() << ", iteration " << i);
      CHECK(same_bits(mae::epoch_arg_for_iteration(s, i), eargs[i]));
      const double got = mae::lr_for_iteration(s, i);
      INFO("got " << got << ", expected " << lrs[i]);
      CHECK(same_bits(got, lrs[i]));
    }
  }
}

TEST_CASE("fixtures: optimizer steps follow exactly the iterations step_iters", "[schedule][fixtures]") {
  for (const auto& dir : train_fixture_dirs()) {
    INFO("fixture " << dir.filename().string());
    const auto t = read_json(dir / "config.json").at("train");
    const LrSchedule s = schedule_from(t);
    const auto expected = t.at("step_iters").get<std::vector<Index>>();
    std::vector<Index> got;
    for (Index i = 0; i < t.at("iterations").get<Index>(); ++i)
      if (mae::is_step_iteration(s, i)) got.push_back(i);
    CHECK(got == expected);
    CHECK(Index(got.size()) == t.at("steps").get<Index>());
    // Complete windows (README section 5): gradients are zeroed before iteration 0 and after each step.
    if (s.iters_per_epoch % s.accum_iter == 0) {
      const std::set<Index> steps(expected.begin(), expected.end());
      for (Index i = 0; i < t.at("iterations").get<Index>(); ++i) {
        INFO("iteration " << i);
        CHECK(mae::zero_grads_before(s, i) == (i == 0 || steps.count(i - 1) == 1));
      }
    }
  }
}

TEST_CASE("fixtures: mae_decays reproduces no_decay_params / decay_params from names and ranks",
          "[adamw][fixtures]") {
  for (const auto& dir : train_fixture_dirs()) {
    INFO("fixture " << dir.filename().string());
    const auto t = read_json(dir / "config.json").at("train");
    const auto no_decay = t.at("no_decay_params").get<std::vector<std::string>>();
    const auto decay = t.at("decay_params").get<std::vector<std::string>>();
    const auto ranks = safetensors_ranks(dir / "weights.safetensors");
    // Trainable = every tensor but the fixed sin-cos position embeddings; the groups cover them once.
    std::set<std::string> trainable, listed;
    for (const auto& [name, rank] : ranks)
      if (name != "pos_embed" && name != "decoder_pos_embed") trainable.insert(name);
    listed.insert(no_decay.begin(), no_decay.end());
    listed.insert(decay.begin(), decay.end());
    CHECK(listed == trainable);
    CHECK(listed.size() == no_decay.size() + decay.size());
    for (const auto& name : no_decay) {
      INFO(name << " rank " << ranks.at(name));
      CHECK_FALSE(mae::mae_decays(name, ranks.at(name)));
    }
    for (const auto& name : decay) {
      INFO(name << " rank " << ranks.at(name));
      CHECK(mae::mae_decays(name, ranks.at(name)));
    }
  }
}

TEST_CASE("groups: 1-D tensors and .bias names do not decay; cls/mask tokens and conv weights do", "[adamw]") {
  CHECK_FALSE(mae::mae_decays("blocks.0.norm1.weight", 1));
  CHECK_FALSE(mae::mae_decays("blocks.0.attn.qkv.bias", 1));
  CHECK_FALSE(mae::mae_decays("some.bias", 2));  // name rule alone
  CHECK_FALSE(mae::mae_decays("scale", 1));      // rank rule alone
  CHECK(mae::mae_decays("cls_token", 3));
  CHECK(mae::mae_decays("mask_token", 3));
  CHECK(mae::mae_decays("patch_embed.proj.weight", 4));
  CHECK(mae::mae_decays("decoder_pred.weight", 2));
  CHECK(mae::mae_decays("bias", 2));             // no leading '.'
  CHECK(mae::mae_decays("temperature", 0));      // 0-D: len(shape) != 1
  CHECK_THROWS_AS(mae::mae_decays("x", -1), mae::Error);
}

TEST_CASE("schedule: warmup is linear, (lr * e) / W, from 0 at e = 0", "[schedule]") {
  LrSchedule s;
  s.lr = 1.5e-4 * 4096 / 256;
  s.min_lr = 0;
  s.warmup_epochs = 40;
  s.epochs = 800;
  s.iters_per_epoch = 1000;
  CHECK(mae::lr_at_epoch(s, 0.0) == 0.0);
  for (double e : {0.001, 0.5, 1.0, 7.25, 20.0, 39.999}) {
    INFO("e = " << e);
    CHECK(same_bits(mae::lr_at_epoch(s, e), (s.lr * e) / s.warmup_epochs));
    CHECK(mae::lr_at_epoch(s, e) == Approx(s.lr * e / 40).epsilon(1e-15));
  }
  CHECK(mae::lr_at_epoch(s, 20.0) == Approx(s.lr / 2).epsilon(1e-15));
}

TEST_CASE("schedule: the half-cycle cosine falls from lr to exactly min_lr at e = epochs", "[schedule]") {
  LrSchedule s;
  s.lr = 2.4e-3;
  s.min_lr = 1e-6;
  s.warmup_epochs = 5;
  s.epochs = 100;
  s.iters_per_epoch = 7;
  CHECK(mae::lr_at_epoch(s, 100.0) == s.min_lr);  // cos(pi) == -1 exactly in double
  const double mid = s.min_lr + (s.lr - s.min_lr) * 0.5;
  CHECK(mae::lr_at_epoch(s, 52.5) == Approx(mid).epsilon(1e-14));
  double prev = mae::lr_at_epoch(s, 5.0);
  for (double e = 5.5; e <= 100.0; e += 0.5) {
    const double cur = mae::lr_at_epoch(s, e);
    INFO("e = " << e);
    CHECK(cur < prev);
    CHECK(cur >= s.min_lr);
    prev = cur;
  }
}

TEST_CASE("schedule: the warmup test is strict, e == W takes the cosine branch", "[schedule]") {
  // With lr 0.3 and min_lr 0.033 the cosine at e == W rounds to 0.30000000000000004, not 0.3.
  LrSchedule s;
  s.lr = 0.3;
  s.min_lr = 0.033;
  s.warmup_epochs = 2;
  s.epochs = 10;
  s.iters_per_epoch = 4;
  const double cosine_at_w = s.min_lr + ((s.lr - s.min_lr) * 0.5) * (1.0 + std::cos(0.0));
  REQUIRE(cosine_at_w != s.lr);
  CHECK(same_bits(mae::lr_at_epoch(s, 2.0), cosine_at_w));
  CHECK(mae::lr_at_epoch(s, std::nextafter(2.0, 0.0)) < s.lr);  // still warmup just below W
  // W = 0: no warmup, e = 0 gives lr (a non-strict test would compute 0 / 0).
  s.warmup_epochs = 0;
  CHECK(mae::lr_at_epoch(s, 0.0) == Approx(s.lr).epsilon(1e-15));
}

TEST_CASE("schedule: lr_at_epoch rounds as the Python expressions, left to right, bit for bit", "[schedule]") {
  // A realistic schedule (ViT-B: blr 1.5e-4, batch 4096, 40 + 760 epochs) sampled at every window
  // start of a 7-iteration epoch. Other groupings of the same maths round differently on this grid,
  // so the bitwise comparison pins the order (lr_sched.py).
  LrSchedule s;
  s.lr = mae::peak_lr(1.5e-4, 4096);
  s.min_lr = 1e-6;
  s.warmup_epochs = 40;
  s.epochs = 800;
  s.iters_per_epoch = 7;
  const double pi = 3.141592653589793, W = s.warmup_epochs, EP = s.epochs;
  int alt_warm = 0, alt_cos = 0;  // (x * 0.5) is exact, so where the 0.5 goes does not matter
  for (Index i = 0; i < 800 * 7; ++i) {
    const double e = static_cast<double>(i % 7) / 7.0 + static_cast<double>(i / 7);
    double expected, alternative;
    if (e < W) {
      expected = (s.lr * e) / W;
      alternative = s.lr * (e / W);
      alt_warm += alternative != expected;
    } else {
      expected = s.min_lr + ((s.lr - s.min_lr) * 0.5) * (1.0 + std::cos((pi * (e - W)) / (EP - W)));
      alternative = s.min_lr + ((s.lr - s.min_lr) * 0.5) * (1.0 + std::cos(pi * ((e - W) / (EP - W))));
      alt_cos += alternative != expected;
    }
    INFO("iteration " << i << ", e = " << e);
    REQUIRE(same_bits(mae::lr_for_iteration(s, i), expected));
  }
  // The grid discriminates: each alternative grouping differs from the official one somewhere.
  CHECK(alt_warm > 0);
  CHECK(alt_cos > 0);
}

TEST_CASE("schedule: lr is set once per accumulation window, windows restart each epoch", "[schedule]") {
  // ipe = 5, accum = 2: windows {0,1}, {2,3}, {4} per epoch; {4} is incomplete and never steps.
  LrSchedule s;
  s.lr = 1e-3;
  s.min_lr = 1e-5;
  s.warmup_epochs = 2;
  s.epochs = 4;
  s.iters_per_epoch = 5;
  s.accum_iter = 2;
  const Index k0_of[5] = {0, 0, 2, 2, 4};
  const bool steps_at[5] = {false, true, false, true, false};
  const bool zero_at[5] = {true, false, true, false, true};
  for (Index i = 0; i < 20; ++i) {
    INFO("iteration " << i);
    const Index k = i % 5, E = i / 5;
    const double e = static_cast<double>(k0_of[k]) / 5.0 + static_cast<double>(E);
    CHECK(same_bits(mae::epoch_arg_for_iteration(s, i), e));
    CHECK(same_bits(mae::lr_for_iteration(s, i), mae::lr_at_epoch(s, e)));
    CHECK(mae::is_step_iteration(s, i) == steps_at[k]);
    CHECK(mae::zero_grads_before(s, i) == zero_at[k]);
  }
  CHECK(mae::lr_for_iteration(s, 0) == 0.0);  // first window of a run from epoch 0
}

TEST_CASE("schedule: start_epoch offsets the epoch of iteration 0", "[schedule]") {
  LrSchedule s;
  s.lr = 1e-3;
  s.min_lr = 1e-5;
  s.warmup_epochs = 1;
  s.epochs = 4;
  s.iters_per_epoch = 2;
  s.start_epoch = 2;
  CHECK(same_bits(mae::lr_for_iteration(s, 0), mae::lr_at_epoch(s, 2.0)));
  CHECK(same_bits(mae::lr_for_iteration(s, 3), mae::lr_at_epoch(s, 3.5)));
  CHECK(mae::zero_grads_before(s, 0));
}

TEST_CASE("schedule: peak_lr is (blr * eff_batch) / 256", "[schedule]") {
  CHECK(mae::peak_lr(1.5e-4, 4096) == (1.5e-4 * 4096.0) / 256.0);
  CHECK(mae::peak_lr(0.128, 2) == 0.001);
  CHECK_THROWS_AS(mae::peak_lr(1e-3, 0), mae::Error);
}

TEST_CASE("schedule: invalid schedules throw mae::Error naming the field", "[schedule]") {
  LrSchedule good;
  good.lr = 1e-3;
  good.min_lr = 0;
  good.warmup_epochs = 1;
  good.epochs = 4;
  good.iters_per_epoch = 2;
  CHECK_NOTHROW(mae::lr_for_iteration(good, 3));
  using Catch::Matchers::Contains;
  LrSchedule s = good;
  s.iters_per_epoch = 0;
  CHECK_THROWS_WITH(mae::lr_for_iteration(s, 0), Contains("iters_per_epoch"));
  s = good;
  s.accum_iter = 0;
  CHECK_THROWS_WITH(mae::is_step_iteration(s, 0), Contains("accum_iter"));
  s = good;
  s.epochs = 0;
  CHECK_THROWS_WITH(mae::lr_at_epoch(s, 0.0), Contains("epochs"));
  s = good;
  s.warmup_epochs = 5;
  CHECK_THROWS_WITH(mae::lr_at_epoch(s, 0.0), Contains("warmup_epochs") && Contains("<= epochs"));
  s = good;
  s.warmup_epochs = -1;
  CHECK_THROWS_WITH(mae::lr_at_epoch(s, 0.0), Contains("warmup_epochs"));
  s = good;
  s.start_epoch = -1;
  CHECK_THROWS_WITH(mae::lr_for_iteration(s, 0), Contains("start_epoch"));
  CHECK_THROWS_WITH(mae::lr_for_iteration(good, -1), Contains("iteration"));
  s = good;
  s.warmup_epochs = 4;  // warmup == epochs: fine during warmup, undefined past it
  CHECK_NOTHROW(mae::lr_at_epoch(s, 3.5));
  CHECK_THROWS_WITH(mae::lr_at_epoch(s, 4.0), Contains("warmup_epochs == epochs"));
}
