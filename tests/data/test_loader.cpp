// BatchLoader: shapes, reproducibility, exact resume, bad-image skipping, error propagation and
// shutdown at any point without hanging.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "support/temp_dir.hpp"
#include "mae/data/loader.hpp"

namespace fs = std::filesystem;
using Catch::Contains;
using mae::Batch;
using mae::BatchLoader;
using mae::Index;
using mae::LoaderOptions;

namespace {

// In-memory images of varying size; `bad` indices fail like an undecodable file.
struct Synthetic final : mae::Dataset {
  Index n;
  std::set<Index> bad;
  int sleep_ms = 0;
  mutable std::atomic<int> calls{0};
  explicit Synthetic(Index n_, std::set<Index> bad_ = {}, int sleep = 0)
      : n(n_), bad(std::move(bad_)), sleep_ms(sleep) {}
  Index size() const override { return n; }
  mae::Image get(Index i, int channels) const override {
    ++calls;
    if (sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    if (bad.count(i)) throw mae::Error("'fake/" + std::to_string(i) + ".png': cannot decode image: corrupt");
    mae::Image img(channels, 20 + int(i % 7), 24 + int(i % 5));
    for (std::size_t k = 0; k < img.pixels.size(); ++k) img.pixels[k] = float((k * 13 + i * 29) % 101) / 100.0f;
    return img;
  }
};

LoaderOptions options(Index batch, int size, std::uint64_t seed = 1) {
  LoaderOptions o;
  o.batch_size = batch;
  o.image_size = size;
  o.channels = 3;
  o.seed = seed;
  o.mean = mae::imagenet_mean;
  o.std = mae::imagenet_std;
  return o;
}

std::vector<Batch> take(BatchLoader& loader, int count) {
  std::vector<Batch> out;
  Batch b;
  for (int i = 0; i < count; ++i) {
    loader.next(b);
    out.push_back(b);
  }
  return out;
}

bool same(const Batch& a, const Batch& b) {
  return a.epoch == b.epoch && a.iteration == b.iteration && a.indices == b.indices && a.images == b.images;
}

using mae::test::TempDir;

}  // namespace

TEST_CASE("batches are [N, C, S, S], one epoch is a permutation without the remainder", "[loader]") {
  auto data = std::make_shared<Synthetic>(22);
  BatchLoader loader(data, options(5, 16));
  REQUIRE(loader.iterations_per_epoch() == 4);  // 22 / 5, drop_last
  loader.start();
  std::set<Index> seen;
  Batch b;
  for (Index it = 0; it < 4; ++it) {
    loader.next(b);
    CHECK(b.epoch == 0);
    CHECK(b.iteration == it);
    CHECK(b.n == 5);
    CHECK(b.channels == 3);
    CHECK(b.size == 16);
    REQUIRE(b.images.size() == std::size_t(5 * 3 * 16 * 16));
    REQUIRE(b.indices.size() == 5);
    seen.insert(b.indices.begin(), b.indices.end());
    const auto [lo, hi] = std::minmax_element(b.images.begin(), b.images.end());
    CHECK(*lo >= (0.0f - 0.485f) / 0.229f - 1e-4f);  // normalised [0, 1] pixels
    CHECK(*hi <= (1.0f - 0.406f) / 0.225f + 1e-4f);
  }
  CHECK(seen.size() == 20);
  CHECK(*seen.rbegin() < 22);
  loader.next(b);  // the stream continues into the next epoch
  CHECK(b.epoch == 1);
  CHECK(b.iteration == 0);
}

TEST_CASE("two loaders with the same seed give identical batches, whatever the thread count", "[loader]") {
  auto data = std::make_shared<Synthetic>(30);
  LoaderOptions o = options(4, 12, 77);
  BatchLoader a(data, o);
  o.threads = 3;
  BatchLoader b(data, o);
  o.threads = 1;
  o.seed = 78;
  BatchLoader c(data, o);
  a.start();
  b.start();
  c.start();
  const auto xa = take(a, 10), xb = take(b, 10), xc = take(c, 10);  // crosses into epoch 1
  for (int i = 0; i < 10; ++i) {
    CHECK(same(xa[i], xb[i]));
    CHECK(xa[i].images != xc[i].images);
  }
  CHECK(xa[0].indices != xa[7].indices);  // epochs are permuted differently
}

TEST_CASE("start(epoch, iteration) resumes exactly where an uninterrupted run would be", "[loader]") {
  auto data = std::make_shared<Synthetic>(26);
  const LoaderOptions o = options(4, 10, 5);  // 6 iterations per epoch
  BatchLoader full(data, o);
  full.start(0, 0);
  const auto all = take(full, 20);  // epochs 0, 1, 2 and part of 3

  BatchLoader resumed(data, o);
  resumed.start(1, 4);  // batch 10 of the uninterrupted run
  const auto rest = take(resumed, 10);
  for (int i = 0; i < 10; ++i) CHECK(same(rest[i], all[10 + i]));

  // Restarting the same loader mid-stream, even while the worker is busy, works too.
  resumed.start(0, 2);
  CHECK(same(take(resumed, 1)[0], all[2]));
  Batch direct;
  resumed.make_batch(2, 5, direct);  // synchronous, no worker
  CHECK(same(direct, all[17]));
  CHECK_THROWS_AS(resumed.start(0, 6), mae::Error);
}

TEST_CASE("augment off resizes only; IDX images come out as pixel / 255", "[loader]") {
  mae::IdxImages idx;
  idx.count = 8;
  idx.rows = idx.cols = 28;
  idx.pixels.resize(8 * 28 * 28);
  for (std::size_t k = 0; k < idx.pixels.size(); ++k) idx.pixels[k] = std::uint8_t(k * 7);
  auto data = std::make_shared<mae::IdxDataset>(idx, "fake-idx");
  LoaderOptions o;
  o.batch_size = 4;
  o.image_size = 28;
  o.channels = 1;
  o.augment = false;
  BatchLoader loader(data, o);
  loader.start();
  const Batch b = loader.next();
  for (Index k = 0; k < 4; ++k)
    for (Index p = 0; p < 28 * 28; ++p)
      REQUIRE(b.images[std::size_t(k * 784 + p)] == float(idx.pixels[std::size_t(b.indices[k] * 784 + p)]) / 255.0f);

  o.channels = 3;  // gray replicated
  BatchLoader rgb(data, o);
  rgb.start();
  const Batch c = rgb.next();
  for (Index p = 0; p < 784; ++p) {
    REQUIRE(c.images[std::size_t(p)] == c.images[std::size_t(784 + p)]);
    REQUIRE(c.images[std::size_t(p)] == c.images[std::size_t(2 * 784 + p)]);
  }
}

TEST_CASE("skip_bad_images replaces bad images with the next good one and counts them", "[loader]") {
  auto data = std::make_shared<Synthetic>(12, std::set<Index>{3, 8});
  LoaderOptions o = options(4, 8);
  o.skip_bad_images = true;
  BatchLoader loader(data, o);
  loader.start();
  const auto epoch0 = take(loader, 3);  // each position of the epoch once
  // Each bad image fails once where it sits in the permutation, and again when it is the
  // replacement tried for its bad neighbour: 2 or 3 failed decodes, the same on every run.
  const Index sum = epoch0[0].skipped + epoch0[1].skipped + epoch0[2].skipped;
  CHECK(loader.skipped() == sum);  // not counting the batch prepared ahead
  CHECK(sum >= 2);
  CHECK(sum <= 3);
  for (const Batch& b : epoch0) {
    CHECK(b.indices.size() == 4);
    for (Index i : b.indices) CHECK((i != 3 && i != 8));
  }
  // Deterministic too: a second loader produces the same replacements.
  BatchLoader again(data, o);
  again.start();
  const auto epoch0b = take(again, 3);
  for (int i = 0; i < 3; ++i) CHECK(same(epoch0[i], epoch0b[i]));
  CHECK(again.skipped() == sum);

  auto one_bad = std::make_shared<Synthetic>(12, std::set<Index>{7});
  BatchLoader single(one_bad, o);
  single.start();
  take(single, 3);
  CHECK(single.skipped() == 1);  // once per epoch
  take(single, 3);
  CHECK(single.skipped() == 2);

  auto hopeless = std::make_shared<Synthetic>(4, std::set<Index>{0, 1, 2, 3});
  LoaderOptions h = options(2, 8);
  h.skip_bad_images = true;
  BatchLoader none(hopeless, h);
  none.start();
  CHECK_THROWS_WITH(none.next(), Contains("no image"));
}

TEST_CASE("a bad image is rethrown by next() naming the file, without hanging", "[loader]") {
  auto data = std::make_shared<Synthetic>(12, std::set<Index>{5});
  for (int threads : {1, 4}) {
    LoaderOptions o = options(4, 8);
    o.threads = threads;
    BatchLoader loader(data, o);
    loader.start();
    bool thrown = false;
    Batch b;
    for (int i = 0; i < 3 && !thrown; ++i) {
      try {
        loader.next(b);
        CHECK(std::find(b.indices.begin(), b.indices.end(), 5) == b.indices.end());
      } catch (const mae::Error& e) {
        thrown = true;
        CHECK_THAT(e.what(), Contains("'fake/5.png'") && Contains("epoch 0"));
      }
    }
    CHECK(thrown);
    CHECK_THROWS_WITH(loader.next(b), Contains("fake/5.png"));  // stays failed until start()
    loader.start(1, 0);
    for (int i = 0; i < 3; ++i) {
      try {
        loader.next(b);
      } catch (const mae::Error&) {
        break;
      }
    }
  }  // destructors after errors: no hang
}

TEST_CASE("destroying the loader at any point does not hang", "[loader]") {
  auto slow = std::make_shared<Synthetic>(64, std::set<Index>{}, 20);  // 20 ms per image
  const auto t0 = std::chrono::steady_clock::now();
  { BatchLoader never_started(slow, options(16, 8)); }
  { BatchLoader busy(slow, options(16, 8)); busy.start(); }  // worker mid-batch
  {
    BatchLoader mid(slow, options(16, 8));
    mid.start();
    mid.next();  // then the worker is making the next one
  }
  {
    LoaderOptions o = options(16, 8);
    o.threads = 4;
    BatchLoader pooled(slow, o);
    pooled.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // One batch is 16 x 20 ms = 0.32 s; cancellation between samples keeps the rest short.
  CHECK(seconds < 2.0);
  CHECK(slow->calls < 64);
}

TEST_CASE("ImageFolder data: a truncated file is named in the error, or skipped and counted", "[loader]") {
  TempDir dir("loader_folder");
  std::vector<unsigned char> px(6 * 5 * 3);
  for (std::size_t k = 0; k < px.size(); ++k) px[k] = (unsigned char)(k * 11);
  for (const char* cls : {"a", "b"})
    for (int i = 0; i < 3; ++i) {
      fs::create_directories(dir.path / cls);
      mae::write_png((dir.path / cls / ("img" + std::to_string(i) + ".png")).string(), px, 6, 5, 3);
    }
  const std::string bad = (dir.path / "b" / "img1.png").string();
  fs::resize_file(bad, 30);
  auto data = std::make_shared<mae::ImageFolderDataset>(dir.path.string());
  REQUIRE(data->size() == 6);

  LoaderOptions o = options(6, 8);
  BatchLoader strict(data, o);
  strict.start();
  CHECK_THROWS_WITH(strict.next(), Contains("'" + bad + "': cannot decode image"));

  o.skip_bad_images = true;
  BatchLoader lenient(data, o);
  lenient.start();
  const Batch b = lenient.next();
  CHECK(lenient.skipped() == 1);
  CHECK(b.images.size() == std::size_t(6 * 3 * 8 * 8));
}

TEST_CASE("invalid options and calls are errors that say what is wrong", "[loader]") {
  auto data = std::make_shared<Synthetic>(10);
  CHECK_THROWS_WITH(BatchLoader(data, options(11, 8)), Contains("10 images") && Contains("11"));
  LoaderOptions o = options(2, 8);
  o.mean = {0.5f};
  CHECK_THROWS_WITH(BatchLoader(data, o), Contains("mean and std"));
  o = options(2, 8);
  o.channels = 2;
  CHECK_THROWS_AS(BatchLoader(data, o), mae::Error);
  BatchLoader loader(data, options(2, 8));
  CHECK_THROWS_WITH(loader.next(), Contains("start"));
  CHECK_THROWS_AS(BatchLoader(nullptr, options(2, 8)), mae::Error);
}

TEST_CASE("the installed Fashion-MNIST train set feeds augmented 1 x 28 x 28 batches", "[loader][dataset]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::is_directory(dir)) {
    WARN("no " << dir << ": real-data check not run");
    return;
  }
  LoaderOptions o;
  o.batch_size = 256;
  o.image_size = 28;
  o.channels = 1;
  o.mean = mae::fashion_mnist_mean;
  o.std = mae::fashion_mnist_std;
  BatchLoader loader(mae::IdxDataset::fashion_mnist(dir, true), o);
  CHECK(loader.iterations_per_epoch() == 234);
  loader.start(3, 100);
  const Batch b = loader.next();
  REQUIRE(b.images.size() == std::size_t(256 * 28 * 28));
  double mean = 0;
  for (float v : b.images) mean += v;
  mean /= double(b.images.size());
  CHECK(std::abs(mean) < 0.5);  // roughly centred (crops zoom in, so not exactly 0)
}
