// visualize: reconstructions of a trained model on images of your choice, as the official demo:
// one row per image, original | masked | reconstruction | reconstruction + visible patches.
//   visualize --model runs/pretrain_tiny/model.safetensors [--data PATH] [--images 8] [--seed 0]
//             [--mask-ratio R] --out recon.png
// --data: an IDX folder/file or an ImageFolder root (the test split where there is one).
#include <cstdio>
#include <string>

#include "mae/backend/default.hpp"
#include "mae/train/trainer.hpp"

int main(int argc, char** argv) {
  std::string model_path, data = "/usr/share/datasets/fashion-mnist", out;
  mae::Index count = 8;
  std::uint64_t seed = 0;
  double mask_ratio = -1;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto val = [&]() -> std::string {
        if (i + 1 >= argc) throw mae::Error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--model") model_path = val();
      else if (a == "--data") data = val();
      else if (a == "--images") count = std::stoll(val());
      else if (a == "--seed") seed = std::stoull(val());
      else if (a == "--mask-ratio") mask_ratio = std::stod(val());
      else if (a == "--out") out = val();
      else if (a == "-h" || a == "--help") {
        std::puts("usage: visualize --model model.safetensors [--data PATH] [--images N] [--seed S] [--mask-ratio R] --out recon.png");
        return 0;
      } else throw mae::Error("unknown option '" + a + "'");
    }
    if (model_path.empty() || out.empty()) throw mae::Error("--model and --out are required (see --help)");
    if (count < 1) throw mae::Error("--images must be at least 1");
    const auto file = mae::io::SafeTensorsFile::load(model_path);
    mae::MaeConfig cfg = mae::io::model_config(file);
    if (mask_ratio >= 0) cfg.mask_ratio = mask_ratio;

    bool is_idx = true;
    const auto images = mae::open_dataset(data, /*held_out=*/true, &is_idx);
    count = std::min(count, images->size());
    std::vector<double> mean, std;
    for (mae::Index c = 0; c < cfg.in_chans; ++c) {
      const auto& m = is_idx ? mae::fashion_mnist_mean : mae::imagenet_mean;
      const auto& s = is_idx ? mae::fashion_mnist_std : mae::imagenet_std;
      mean.push_back(m[std::min<std::size_t>(c, m.size() - 1)]);
      std.push_back(s[std::min<std::size_t>(c, s.size() - 1)]);
    }
    std::vector<float> imgs, noise;
    for (mae::Index r = 0; r < count; ++r) {
      mae::Image img = mae::resize(images->get(r, int(cfg.in_chans)), int(cfg.img_size));
      mae::normalize(img, std::vector<float>(mean.begin(), mean.end()), std::vector<float>(std.begin(), std.end()));
      imgs.insert(imgs.end(), img.pixels.begin(), img.pixels.end());
      mae::Rng rng(seed, 0xF15, std::uint64_t(r));
      for (mae::Index l = 0; l < cfg.num_patches(); ++l) noise.push_back(rng.uniform_float());
    }
    mae::backend::Default be;
    mae::MaeViT<float, mae::backend::Default> model(cfg, be, count);
    mae::io::load_weights(model, file);
    const float loss = model.forward(imgs, noise);
    mae::write_recon_grid(out, cfg, count, imgs, model.pred(), model.mask(), mean, std);
    std::printf("wrote %s: %lld images from %s, mask ratio %.2f, loss %.4f\n", out.c_str(), (long long)count,
                data.c_str(), cfg.mask_ratio, double(loss));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "visualize: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
