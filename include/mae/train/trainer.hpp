// The pretraining program's engine: data, model, official schedule and AdamW, progress line,
// JSON-lines log, reconstruction grids, and checkpoints that resume bit for bit.
// Output folder: checkpoint.safetensors (resume), model.safetensors (weights, official names, config
// in metadata), log.jsonl (one object per logged step and per epoch), recon_<epoch>.png.
#pragma once
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "mae/data/loader.hpp"
#include "mae/io/checkpoint.hpp"
#include "mae/model/init.hpp"
#include "mae/train/config.hpp"
#include "mae/train/recon.hpp"

namespace mae {

// The data set named by `path`: an IDX file, a folder with the MNIST-family IDX files, or an
// ImageFolder root. `held_out` asks for the test split where there is one (for pictures).
inline std::shared_ptr<const Dataset> open_dataset(const std::string& path, bool held_out, bool* is_idx = nullptr) {
  namespace fs = std::filesystem;
  MAE_CHECK(!path.empty(), "no data path given (use --data PATH: an IDX folder or an ImageFolder root)");
  std::error_code ec;
  MAE_CHECK(fs::exists(path, ec), "data path '", path, "' does not exist");
  if (is_idx) *is_idx = true;
  if (fs::is_regular_file(path, ec)) return std::make_shared<IdxDataset>(path);
  bool has_idx = false;
  try {
    find_fashion_mnist(path, true);
    has_idx = true;
  } catch (const Error&) {
  }
  if (has_idx) {
    std::string file = find_fashion_mnist(path, true);
    if (held_out) {
      try {
        file = find_fashion_mnist(path, false);
      } catch (const Error&) {
      }
    }
    return std::make_shared<IdxDataset>(file);
  }
  if (is_idx) *is_idx = false;
  return std::make_shared<ImageFolderDataset>(path);
}

template <class T, class B>
class Trainer {
 public:
  Trainer(TrainConfig cfg, B& be, std::string resume = "") : cfg_(std::move(cfg)), be_(&be), resume_(std::move(resume)) {
    cfg_.validate();
  }

  // Runs until the last epoch or max_steps. Returns the number of iterations run in this call.
  Index run() {
    namespace fs = std::filesystem;
    using clock = std::chrono::steady_clock;
    if (cfg_.threads > 0) omp_set_num_threads(cfg_.threads);
    std::error_code ec;
    MAE_CHECK(resume_.empty() || fs::exists(resume_, ec), "resume checkpoint '", resume_, "' does not exist");
    fs::create_directories(cfg_.out, ec);
    MAE_CHECK(!ec && fs::is_directory(cfg_.out), "cannot create output folder '", cfg_.out, "': ",
              ec ? ec.message() : "exists and is not a folder");

    bool is_idx = true;
    auto data = open_dataset(cfg_.data, false, &is_idx);
    auto held = open_dataset(cfg_.data, true);
    const MaeConfig& mc = cfg_.model;
    if (cfg_.mean.empty()) {
      const auto& m = is_idx ? fashion_mnist_mean : imagenet_mean;
      const auto& s = is_idx ? fashion_mnist_std : imagenet_std;
      for (Index c = 0; c < mc.in_chans; ++c) {
        cfg_.mean.push_back(m[std::min<std::size_t>(c, m.size() - 1)]);
        cfg_.std.push_back(s[std::min<std::size_t>(c, s.size() - 1)]);
      }
    }
    LoaderOptions lo;
    lo.batch_size = cfg_.batch;
    lo.image_size = int(mc.img_size);
    lo.channels = int(mc.in_chans);
    lo.augment = cfg_.augment;
    lo.mean.assign(cfg_.mean.begin(), cfg_.mean.end());
    lo.std.assign(cfg_.std.begin(), cfg_.std.end());
    lo.seed = cfg_.seed;
    lo.skip_bad_images = cfg_.skip_bad_images;
    lo.threads = cfg_.decode_threads;
    BatchLoader loader(data, lo);
    const Index ipe = loader.iterations_per_epoch();
    MAE_CHECK(ipe > 0, "data '", cfg_.data, "' has ", data->size(), " images, fewer than one batch of ", cfg_.batch);

    MaeViT<T, B> model(mc, *be_, cfg_.batch);
    init_weights(model, cfg_.seed);
    LrSchedule sched;
    sched.lr = cfg_.lr > 0 ? cfg_.lr : peak_lr(cfg_.blr, cfg_.batch * cfg_.accum_iter);
    sched.min_lr = cfg_.min_lr;
    sched.warmup_epochs = double(cfg_.warmup_epochs);
    sched.epochs = double(cfg_.epochs);
    sched.iters_per_epoch = ipe;
    sched.accum_iter = cfg_.accum_iter;
    OptimConfig opt;
    opt.weight_decay = cfg_.weight_decay;
    TrainLoop<T, B> loop(model, sched, opt);

    const std::string ckpt = cfg_.out + "/checkpoint.safetensors", weights = cfg_.out + "/model.safetensors";
    // the run config plus the data set size: data order and schedule depend on it
    nlohmann::json run_json = cfg_.to_json();
    run_json["dataset_images"] = data->size();
    const Index total = cfg_.epochs * ipe;
    Index start = 0;
    if (!resume_.empty()) {
      const io::CheckpointInfo info = io::load_checkpoint(resume_, loop);
      for (const char* key : {"batch", "accum_iter", "seed", "epochs", "warmup_epochs", "augment", "dataset_images"})
        MAE_CHECK(info.run_config.value(key, nlohmann::json()) == run_json[key], "'", resume_,
                  "': checkpoint was trained with ", key, " = ", info.run_config.value(key, nlohmann::json()).dump(),
                  ", this run has ", run_json[key].dump(), " (a resumed run must keep it)");
      MAE_CHECK(info.iteration <= total, "'", resume_, "': checkpoint is at iteration ", info.iteration,
                ", past the end of this run's schedule (", total, " iterations)");
      start = info.iteration;
      std::printf("resumed from %s at iteration %lld (epoch %lld)\n", resume_.c_str(), (long long)start,
                  (long long)(start / ipe));
    }
    const Index end = cfg_.max_steps > 0 ? std::min(total, start + cfg_.max_steps) : total;
    std::ofstream log(cfg_.out + "/log.jsonl", start > 0 ? std::ios::app : std::ios::trunc);
    MAE_CHECK(log.good(), "cannot write '", cfg_.out, "/log.jsonl'");

    // fixed held-out images and mask noise for the reconstruction pictures
    const Index R = std::min<Index>(cfg_.recon_images, held->size());
    std::unique_ptr<MaeViT<T, B>> eval;
    std::vector<T> eval_imgs, eval_noise;
    if (R > 0) {
      eval = std::make_unique<MaeViT<T, B>>(mc, *be_, R);
      LoaderOptions eo = lo;
      eo.augment = false;
      eo.batch_size = R;
      for (Index r = 0; r < R; ++r) {
        Image img;
        for (Index j = r * (held->size() / R), tried = 0;; j = (j + 1) % held->size(), ++tried) {
          try {  // with skip_bad_images, the next decodable image (as the loader does)
            img = held->get(j, int(mc.in_chans));
            break;
          } catch (const std::exception&) {
            if (!cfg_.skip_bad_images || tried + 1 >= held->size()) throw;
          }
        }
        img = resize(img, int(mc.img_size));
        normalize(img, lo.mean, lo.std);
        eval_imgs.insert(eval_imgs.end(), img.pixels.begin(), img.pixels.end());
      }
      for (Index i = 0; i < R * mc.num_patches(); ++i) eval_noise.push_back(T(Rng(cfg_.seed, 0xE7A1, i).uniform()));
    }

    std::printf("pretraining %s: %lld images, %lld iterations/epoch, %lld epochs, batch %lld, peak lr %.3g, %s\n",
                cfg_.data.c_str(), (long long)data->size(), (long long)ipe, (long long)cfg_.epochs,
                (long long)cfg_.batch, sched.lr, sizeof(T) == 8 ? "f64" : "f32");
    std::printf("model: %lld parameters, img %lld, patch %lld, encoder %lldx%lld, decoder %lldx%lld, mask %.2f; threads %d\n",
                (long long)trainable_count(model), (long long)mc.img_size, (long long)mc.patch_size,
                (long long)mc.embed_dim, (long long)mc.depth, (long long)mc.decoder_embed_dim,
                (long long)mc.decoder_depth, mc.mask_ratio, omp_get_max_threads());
    std::fflush(stdout);

    loader.start(start / ipe, start % ipe);
    Batch batch;
    std::vector<T> imgs, noise(cfg_.batch * mc.num_patches());
    const auto t0 = clock::now();
    auto tlog = t0;
    double loss_sum = 0, epoch_loss = 0;
    Index loss_count = 0, epoch_count = 0;
    for (Index i = start; i < end; ++i) {
      loader.next(batch);
      imgs.assign(batch.images.begin(), batch.images.end());
      for (Index s = 0; s < cfg_.batch; ++s) {
        Rng rng(cfg_.seed, 1 + std::uint64_t(i), std::uint64_t(s));
        for (Index l = 0; l < mc.num_patches(); ++l) noise[s * mc.num_patches() + l] = T(rng.uniform());
      }
      const T loss = loop.iteration(imgs.data(), noise.data());
      MAE_CHECK(std::isfinite(double(loss)), "loss is ", double(loss), " at iteration ", i, " (epoch ", i / ipe,
                "): training stopped; ", kept(ckpt));
      loss_sum += double(loss), epoch_loss += double(loss);
      ++loss_count, ++epoch_count;
      const bool epoch_end = (i + 1) % ipe == 0, last = i + 1 == end;
      if ((i + 1) % cfg_.log_every == 0 || epoch_end || last) {
        const auto now = clock::now();
        const double dt = std::chrono::duration<double>(now - tlog).count();
        const double elapsed = std::chrono::duration<double>(now - t0).count();
        const double ips = double(loss_count * cfg_.batch) / std::max(dt, 1e-9);
        const double eta = elapsed / double(i + 1 - start) * double(end - i - 1);
        std::printf("epoch %lld/%lld  iter %lld/%lld  loss %.4f  lr %.3e  %.1f img/s  ETA %s\n",
                    (long long)(i / ipe + 1), (long long)cfg_.epochs, (long long)(i + 1), (long long)total,
                    loss_sum / double(loss_count), loop.lr(), ips, format_duration(eta).c_str());
        std::fflush(stdout);
        log << nlohmann::json{{"type", "step"}, {"iteration", i + 1}, {"epoch", double(i + 1) / double(ipe)},
                              {"loss", loss_sum / double(loss_count)}, {"lr", loop.lr()}, {"images_per_s", ips},
                              {"elapsed_s", elapsed}}.dump()
            << "\n" << std::flush;
        loss_sum = 0, loss_count = 0, tlog = now;
      }
      if (epoch_end || last) {
        const Index epoch = i / ipe + (epoch_end ? 1 : 0);  // epochs completed
        if (epoch_end) {
          log << nlohmann::json{{"type", "epoch"}, {"epoch", epoch}, {"loss", epoch_loss / double(epoch_count)},
                                {"lr", loop.lr()}, {"skipped_images", loader.skipped()}}.dump()
              << "\n" << std::flush;
          epoch_loss = 0, epoch_count = 0;
        }
        // a checkpoint resumes at the start of the current accumulation window (no step has
        // happened in it, so the weights and moments are those of its start)
        const Index next = i + 1, k = next % ipe, resume_at = next - (k % cfg_.accum_iter);
        check_finite_params(model, i, ckpt);  // never replace the last good checkpoint with NaNs
        io::save_checkpoint(ckpt, loop, resume_at, run_json);
        io::save_weights(model, weights);
        if (eval) {
          eval->copy_params_from(model);
          eval->forward(eval_imgs.data(), eval_noise.data());
          const std::string png = cfg_.out + "/recon_" + std::to_string(epoch) + ".png";
          write_recon_grid(png, mc, R, eval_imgs, eval->pred(), eval->mask(), cfg_.mean, cfg_.std);
        }
      }
    }
    std::printf("wrote %s (resume with --resume), %s (weights, official names), %s/log.jsonl, %s/recon_<epoch>.png\n",
                ckpt.c_str(), weights.c_str(), cfg_.out.c_str(), cfg_.out.c_str());
    return end - start;
  }

  const TrainConfig& config() const { return cfg_; }

 private:
  static Index trainable_count(const MaeViT<T, B>& m) {
    Index n = 0;
    for (const ParamInfo& p : m.table().entries()) n += p.trainable ? p.numel : 0;
    return n;
  }
  static std::string kept(const std::string& ckpt) {
    std::error_code ec;
    return std::filesystem::exists(ckpt, ec) ? "the last checkpoint written ('" + ckpt + "') is unchanged"
                                             : "no checkpoint was written";
  }
  static void check_finite_params(const MaeViT<T, B>& m, Index i, const std::string& ckpt) {
    for (const ParamInfo& p : m.table().entries()) {
      if (!p.trainable) continue;
      for (const T v : m.get(p.name))
        MAE_CHECK(std::isfinite(double(v)), "parameter '", p.name, "' is ", double(v), " after the step at iteration ",
                  i, ": training stopped; ", kept(ckpt));
    }
  }
  static std::string format_duration(double s) {
    char buf[32];
    const long t = std::lround(std::max(0.0, s));
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    return buf;
  }

  TrainConfig cfg_;
  B* be_;
  std::string resume_;
};

}  // namespace mae
