// Builds and runs one training step of a tiny MAE through the installed headers.
#include <cmath>
#include <cstdio>
#include <mae/backend/default.hpp>
#include <mae/mae.hpp>

int main() {
  mae::MaeConfig c;
  c.img_size = 8, c.patch_size = 2, c.in_chans = 1, c.embed_dim = 8, c.depth = 1, c.num_heads = 2;
  c.decoder_embed_dim = 8, c.decoder_depth = 1, c.decoder_num_heads = 2;
  mae::backend::Default be;
  mae::MaeViT<float, mae::backend::Default> model(c, be, 2);
  std::vector<float> imgs(2 * 64, 0.25f), noise(2 * 16);
  for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = float(i % 16) / 16.0f;
  const float loss = model.forward(imgs, noise);
  model.backward();
  std::printf("consumer (%s): loss %g\n", mae::backend::Default::name, loss);
  return std::isfinite(loss) ? 0 : 1;
}
