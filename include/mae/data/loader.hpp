// mae.cpp: datasets and the batch loader (the DataLoader of the official MAE main_pretrain.py).
//
// A batch is a pure function of (seed, epoch, iteration) and the dataset, so a run is reproducible
// whatever the thread count and resumes exactly from a checkpoint's (epoch, iteration):
//   permutation of epoch e     = Fisher-Yates shuffle of 0..size-1 with Rng(seed, e, 0)
//   batch (e, it), sample k    = dataset[perm[p]], p = it * batch + k (its index in the epoch)
//   its augmentation           = Rng(seed, e, 1 + p): RandomResizedCrop, then flip if U < 0.5
// drop_last: iterations per epoch = size / batch; the size % batch last samples of a permutation
// are not seen that epoch. Batches are [N, C, S, S] floats, normalised per channel with mean/std.
//
// Bad images. skip_bad_images = false: the worker's error is rethrown by next(), naming the file,
// and next() keeps rethrowing until start() is called again. true: a sample whose image fails to
// decode (any std::exception from Dataset::get) is replaced by the next decodable one in the
// permutation, perm[p + 1], perm[p + 2], ... (wrapping; it may repeat a neighbour of the batch),
// keeping sample p's augmentation stream;
// Batch::skipped counts the failed decodes of that batch, skipped() their sum over the batches
// handed out so far (the batch prepared ahead is not counted until next() returns it).
//
// Threads. One background std::thread keeps one batch ready ahead of the consumer: while the
// caller trains on batch t, batch t + 1 is being decoded. With threads > 1 the worker decodes a
// batch's samples on that many threads (same results). Buffers are recycled: next(Batch&) swaps
// the caller's previous batch storage back to the worker, so steady state allocates only inside
// image decoding. The destructor cancels work between samples and joins, at any point.
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "mae/config.hpp"
#include "mae/data/idx.hpp"
#include "mae/data/image.hpp"
#include "mae/data/image_folder.hpp"
#include "mae/data/transforms.hpp"
#include "mae/tensor/rng.hpp"

namespace mae {

// A list of images. get() is called from loader threads concurrently, so it must be thread-safe;
// its errors should name the source (file) of sample i.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual Index size() const = 0;
  virtual Image get(Index i, int channels) const = 0;  // float CHW in [0, 1], channels 1 or 3
};

// IDX images (Fashion-MNIST: 1 x 28 x 28), held in memory; value / 255; channels = 3 replicates.
class IdxDataset final : public Dataset {
 public:
  explicit IdxDataset(const std::string& path) : IdxDataset(read_idx_images(path), path) {}
  explicit IdxDataset(IdxImages images, std::string name = "IDX images")
      : images_(std::move(images)), name_(std::move(name)) {}
  static std::shared_ptr<IdxDataset> fashion_mnist(const std::string& dir, bool train) {
    return std::make_shared<IdxDataset>(find_fashion_mnist(dir, train));
  }

  Index size() const override { return images_.count; }
  Image get(Index i, int channels) const override {
    MAE_CHECK(i >= 0 && i < size(), "'", name_, "': image ", i, " out of range [0, ", size(), ")");
    MAE_CHECK(channels == 1 || channels == 3, "'", name_, "': channels must be 1 or 3, got ", channels);
    const std::size_t plane = std::size_t(images_.rows * images_.cols);
    Image img(channels, int(images_.rows), int(images_.cols));
    const std::uint8_t* src = &images_.pixels[std::size_t(i) * plane];
    for (std::size_t p = 0; p < plane; ++p) img.pixels[p] = float(src[p]) / 255.0f;
    for (int c = 1; c < channels; ++c)
      std::copy(img.pixels.begin(), img.pixels.begin() + std::ptrdiff_t(plane),
                img.pixels.begin() + std::ptrdiff_t(c * plane));
    return img;
  }
  const IdxImages& images() const { return images_; }

 private:
  IdxImages images_;
  std::string name_;
};

// root/<class>/<image> decoded on demand with stb_image; errors name the file.
class ImageFolderDataset final : public Dataset {
 public:
  explicit ImageFolderDataset(const std::string& root) : folder_(root) {}
  explicit ImageFolderDataset(ImageFolder folder) : folder_(std::move(folder)) {}
  Index size() const override { return folder_.size(); }
  Image get(Index i, int channels) const override { return folder_.load(i, channels); }
  const ImageFolder& folder() const { return folder_; }

 private:
  ImageFolder folder_;
};

// Per-channel statistics for LoaderOptions::mean / std.
inline const std::vector<float> imagenet_mean = {0.485f, 0.456f, 0.406f};
inline const std::vector<float> imagenet_std = {0.229f, 0.224f, 0.225f};
inline const std::vector<float> fashion_mnist_mean = {0.2860f};  // train set, pixels / 255
inline const std::vector<float> fashion_mnist_std = {0.3530f};

struct LoaderOptions {
  Index batch_size = 64;
  int image_size = 224;         // S: every image comes out S x S
  int channels = 3;             // C: 1 or 3 (gray <-> RGB converted on load)
  bool augment = true;          // RandomResizedCrop + flip; false: resize to S x S
  double scale_min = 0.2, scale_max = 1.0;  // RandomResizedCrop area range
  Interpolation interpolation = Interpolation::bilinear;
  std::vector<float> mean, std; // C values each; both empty = no normalisation (values in [0, 1])
  std::uint64_t seed = 0;
  bool skip_bad_images = false;
  int threads = 1;              // decode threads per batch; batches do not depend on it
};

struct Batch {
  Index epoch = 0, iteration = 0;   // which batch this is
  Index n = 0, channels = 0, size = 0;
  std::vector<float> images;        // (n, channels, size, size), normalised
  std::vector<Index> indices;       // dataset index of each sample (after skips)
  Index skipped = 0;                // failed decodes while making this batch (all replaced)
};

class BatchLoader {
 public:
  BatchLoader(std::shared_ptr<const Dataset> data, LoaderOptions opt)
      : data_(std::move(data)), opt_(std::move(opt)) {
    MAE_CHECK(data_ != nullptr, "BatchLoader: dataset is null");
    MAE_CHECK(opt_.batch_size > 0, "BatchLoader: batch_size must be positive, got ", opt_.batch_size);
    MAE_CHECK(opt_.image_size > 0, "BatchLoader: image_size must be positive, got ", opt_.image_size);
    MAE_CHECK(opt_.channels == 1 || opt_.channels == 3, "BatchLoader: channels must be 1 or 3, got ",
              opt_.channels);
    MAE_CHECK(opt_.mean.size() == opt_.std.size() &&
                  (opt_.mean.empty() || opt_.mean.size() == std::size_t(opt_.channels)),
              "BatchLoader: mean and std need ", opt_.channels, " values each (or both empty), got ",
              opt_.mean.size(), " and ", opt_.std.size());
    MAE_CHECK(opt_.threads >= 1, "BatchLoader: threads must be >= 1, got ", opt_.threads);
    iterations_ = data_->size() / opt_.batch_size;
    MAE_CHECK(iterations_ > 0, "BatchLoader: dataset has ", data_->size(),
              " images, fewer than one batch of ", opt_.batch_size, " (batches drop the remainder)");
    worker_ = std::thread([this] { run(); });  // last: nothing below may throw
  }

  ~BatchLoader() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  Index iterations_per_epoch() const { return iterations_; }
  const LoaderOptions& options() const { return opt_; }
  const Dataset& dataset() const { return *data_; }
  Index skipped() const { return skipped_.load(); }  // over the batches handed out

  // (Re)starts the stream at batch (epoch, iteration); the batches then follow in order,
  // (e, it), (e, it + 1), ..., (e + 1, 0), ... Work in flight for the old position is discarded.
  void start(Index epoch = 0, Index iteration = 0) {
    MAE_CHECK(epoch >= 0 && iteration >= 0 && iteration < iterations_, "BatchLoader::start: (epoch ",
              epoch, ", iteration ", iteration, ") out of range; iterations per epoch: ", iterations_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++generation_;
      epoch_ = epoch;
      iteration_ = iteration;
      started_ = true;
      ready_ = false;
      error_ = nullptr;
    }
    cv_.notify_all();
  }

  // Waits for the next batch and swaps it into `out` (out's old storage goes back for reuse).
  // Rethrows the error of a failed batch (and again on every call until start()).
  void next(Batch& out) {
    std::unique_lock<std::mutex> lock(mu_);
    MAE_CHECK(started_, "BatchLoader::next: call start(epoch, iteration) first");
    cv_.wait(lock, [&] { return ready_ || error_ != nullptr; });
    if (error_) std::rethrow_exception(error_);
    std::swap(out, slot_);
    ready_ = false;
    skipped_ += out.skipped;
    lock.unlock();
    cv_.notify_all();
  }
  Batch next() {
    Batch b;
    next(b);
    return b;
  }

  // Builds batch (epoch, iteration) in the calling thread, without the worker: what next() returns
  // for that position (skipped() counts here too).
  void make_batch(Index epoch, Index iteration, Batch& out) {
    std::vector<Index> perm;
    Index perm_epoch = -1;
    MAE_CHECK(epoch >= 0 && iteration >= 0 && iteration < iterations_, "BatchLoader::make_batch: (epoch ",
              epoch, ", iteration ", iteration, ") out of range; iterations per epoch: ", iterations_);
    produce(epoch, iteration, out, perm, perm_epoch, never_cancel);
    skipped_ += out.skipped;
  }

 private:
  void run() {
    std::vector<Index> perm;  // permutation of perm_epoch, kept across the epoch's batches
    Index perm_epoch = -1;
    Batch work;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || (started_ && !ready_ && error_ == nullptr); });
      if (stop_) return;
      const std::uint64_t gen = generation_;
      const Index epoch = epoch_, iteration = iteration_;
      lock.unlock();
      std::exception_ptr err;
      bool done = false;
      try {
        done = produce(epoch, iteration, work, perm, perm_epoch, gen);
      } catch (...) {
        err = std::current_exception();
      }
      lock.lock();
      if (stop_) return;
      if (gen != generation_ || (!done && !err)) continue;  // start() moved us: drop it
      if (err) {
        error_ = err;
      } else {
        std::swap(slot_, work);
        ready_ = true;
        if (++iteration_ == iterations_) {
          iteration_ = 0;
          ++epoch_;
        }
      }
      cv_.notify_all();
    }
  }

  static constexpr std::uint64_t never_cancel = ~std::uint64_t(0);
  bool cancelled(std::uint64_t gen) const {
    return gen != never_cancel && (stop_.load() || generation_.load() != gen);
  }

  // Fills `out` with batch (epoch, iteration). Returns false when cancelled midway.
  bool produce(Index epoch, Index iteration, Batch& out, std::vector<Index>& perm, Index& perm_epoch,
               std::uint64_t gen) {
    const Index size = data_->size(), B = opt_.batch_size;
    if (perm_epoch != epoch) {
      perm.resize(std::size_t(size));
      std::iota(perm.begin(), perm.end(), Index(0));
      Rng rng(opt_.seed, std::uint64_t(epoch), 0);
      shuffle(perm.begin(), perm.end(), rng);
      perm_epoch = epoch;
    }
    const std::size_t sample = std::size_t(opt_.channels) * opt_.image_size * opt_.image_size;
    out.epoch = epoch;
    out.iteration = iteration;
    out.n = B;
    out.channels = opt_.channels;
    out.size = opt_.image_size;
    out.images.resize(std::size_t(B) * sample);
    out.indices.resize(std::size_t(B));

    const Index nthreads = std::min<Index>(opt_.threads, B);
    // Each thread stops at its own first error, so the lowest failing sample is always found.
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(B));
    std::atomic<bool> stopped{false};
    std::atomic<Index> skipped{0};
    auto work = [&](Index t) {  // samples t, t + nthreads, ...
      for (Index k = t; k < B; k += nthreads) {
        if (cancelled(gen) || stopped.load()) return;
        try {
          make_sample(epoch, iteration, iteration * B + k, perm, &out.images[std::size_t(k) * sample],
                      out.indices[std::size_t(k)], skipped);
        } catch (...) {
          errors[std::size_t(k)] = std::current_exception();
          return;
        }
      }
    };
    if (nthreads == 1) {
      work(0);
    } else {
      std::vector<std::thread> pool;
      std::exception_ptr spawn_error;
      try {
        for (Index t = 1; t < nthreads; ++t) pool.emplace_back(work, t);
      } catch (...) {
        spawn_error = std::current_exception();
        stopped = true;
      }
      if (!spawn_error) work(0);
      for (auto& th : pool) th.join();
      if (spawn_error) std::rethrow_exception(spawn_error);
    }
    for (const auto& e : errors)  // the lowest failing sample, whatever the thread count
      if (e) std::rethrow_exception(e);
    out.skipped = skipped.load();
    return !cancelled(gen);
  }

  // Sample at position p of epoch's permutation, augmented, normalised, written to dst (C*S*S).
  void make_sample(Index epoch, Index iteration, Index p, const std::vector<Index>& perm, float* dst,
                   Index& used, std::atomic<Index>& skipped) {
    const Index size = data_->size();
    Image img;
    bool ok = false;
    for (Index j = 0; j < size && !ok; ++j) {
      used = perm[std::size_t((p + j) % size)];
      try {
        img = data_->get(used, opt_.channels);
        ok = true;
      } catch (const std::exception& e) {
        if (!opt_.skip_bad_images)
          throw Error(detail::cat("BatchLoader: epoch ", epoch, ", iteration ", iteration,
                                  ", dataset index ", used, ": ", e.what()));
        ++skipped;
      }
    }
    MAE_CHECK(ok, "BatchLoader: no image of the dataset could be decoded (", size, " tried)");
    MAE_CHECK(img.channels == opt_.channels, "BatchLoader: dataset index ", used, " has ",
              img.channels, " channels, expected ", opt_.channels);
    Rng rng(opt_.seed, std::uint64_t(epoch), 1 + std::uint64_t(p));
    if (opt_.augment) {
      img = random_resized_crop(img, opt_.image_size, rng, opt_.scale_min, opt_.scale_max, 3.0 / 4,
                                4.0 / 3, opt_.interpolation);
      random_horizontal_flip(img, rng);
    } else if (img.height != opt_.image_size || img.width != opt_.image_size) {
      img = resize(img, opt_.image_size, opt_.interpolation);
    }
    if (!opt_.mean.empty()) normalize(img, opt_.mean, opt_.std);
    std::memcpy(dst, img.pixels.data(), img.pixels.size() * sizeof(float));
  }

  std::shared_ptr<const Dataset> data_;
  LoaderOptions opt_;
  Index iterations_ = 0;
  std::atomic<Index> skipped_{0};

  std::mutex mu_;  // guards everything below; the atomics are also read without it
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> generation_{0};
  bool started_ = false, ready_ = false;
  Index epoch_ = 0, iteration_ = 0;  // the next batch the worker makes
  std::exception_ptr error_;
  Batch slot_;                       // the ready batch
  std::thread worker_;
};

}  // namespace mae
