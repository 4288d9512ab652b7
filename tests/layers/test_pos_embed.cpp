// Fixed 2-D sin-cos position embedding (MAE get_2d_sincos_pos_embed, cls_token=True), checked against
// the closed-form table of shared/fixtures/mae_parity/README.md §2.2, computed here independently:
// q = E/4, ω_k = 1 / 10000^(k/q); row 0 zero; patch (i, j) at row 1 + i·g + j holds
// [sin(j ω), cos(j ω), sin(i ω), cos(i ω)], each value rounded to float32.
// A fixed tensor has no gradient (and the model gives it none: its Param has no grad pointer).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/pos_embed_sincos.hpp"
#include "mae/model/mae_vit.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;

// The README table, in long double, then rounded to float32 as the official parameter holds it.
std::vector<double> closed_form(Index E, Index g) {
  const Index q = E / 4;
  std::vector<double> out((1 + g * g) * E, 0.0);
  for (Index i = 0; i < g; ++i)
    for (Index j = 0; j < g; ++j)
      for (Index k = 0; k < q; ++k) {
        const long double w = 1.0L / std::pow(10000.0L, (long double)k / (long double)q);
        double* row = out.data() + (1 + i * g + j) * E;
        row[k] = float(std::sin(j * w));
        row[q + k] = float(std::cos(j * w));
        row[2 * q + k] = float(std::sin(i * w));
        row[3 * q + k] = float(std::cos(i * w));
      }
  return out;
}

// Equal up to one float32 rounding step (the reference is rounded from long double, the library
// from double: the two can straddle a float rounding boundary only by 1 ulp).
void check_table(const std::vector<double>& got, const std::vector<double>& expect, Index E) {
  REQUIRE(got.size() == expect.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("row " << i / E << " column " << i % E);
    CHECK(std::abs(got[i] - expect[i]) <= 6e-8 * std::max(1.0, std::abs(expect[i])));
    CHECK(double(float(got[i])) == got[i]);  // exactly a float32 value
  }
}

}  // namespace

TEST_CASE("sin-cos position embedding: first half encodes the column, second half the row", "[pos_embed]") {
  SECTION("width 8, grid 3") {
    const std::vector<double> pe = mae::sincos_pos_embed_2d<double>(8, 3);
    check_table(pe, closed_form(8, 3), 8);
    // q = 2, ω = (1, 0.01). Patch (i = 0, j = 1) is row 2: column sin/cos in the first half, row 0 in the second
    const double* r = pe.data() + 2 * 8;
    CHECK(r[0] == double(float(std::sin(1.0))));
    CHECK(r[1] == double(float(std::sin(0.01))));
    CHECK(r[2] == double(float(std::cos(1.0))));
    CHECK(r[3] == double(float(std::cos(0.01))));
    CHECK(r[4] == 0.0);
    CHECK(r[5] == 0.0);
    CHECK(r[6] == 1.0);
    CHECK(r[7] == 1.0);
    // patch (i = 1, j = 0) is row 1 + 3 = 4: the mirror image
    const double* s = pe.data() + 4 * 8;
    CHECK(s[0] == 0.0);
    CHECK(s[1] == 0.0);
    CHECK(s[2] == 1.0);
    CHECK(s[3] == 1.0);
    CHECK(s[4] == double(float(std::sin(1.0))));
    CHECK(s[5] == double(float(std::sin(0.01))));
    CHECK(s[6] == double(float(std::cos(1.0))));
    CHECK(s[7] == double(float(std::cos(0.01))));
    for (Index c = 0; c < 8; ++c) CHECK(pe[c] == 0.0);  // cls row
  }
  SECTION("width 16, grid 4; width 12, grid 5 (q = 3, odd)") {
    check_table(mae::sincos_pos_embed_2d<double>(16, 4), closed_form(16, 4), 16);
    check_table(mae::sincos_pos_embed_2d<double>(12, 5), closed_form(12, 5), 12);
  }
  SECTION("float gives the same float32 values") {
    const std::vector<float> pf = mae::sincos_pos_embed_2d<float>(12, 5);
    const std::vector<double> pd = mae::sincos_pos_embed_2d<double>(12, 5);
    REQUIRE(pf.size() == pd.size());
    for (std::size_t i = 0; i < pf.size(); ++i) CHECK(double(pf[i]) == pd[i]);
  }
}

TEST_CASE("sin-cos position embedding rejects a width that is not a multiple of 4", "[pos_embed]") {
  CHECK_THROWS_AS(mae::sincos_pos_embed_2d<double>(10, 3), mae::Error);
  CHECK_THROWS_WITH(mae::sincos_pos_embed_2d<double>(10, 3), Catch::Contains("10"));
}

TEST_CASE("the model holds the sin-cos tables as fixed pos_embed and decoder_pos_embed (no gradient)", "[pos_embed]") {
  mae::MaeConfig cfg;
  cfg.img_size = 6;
  cfg.patch_size = 2;
  cfg.in_chans = 1;
  cfg.embed_dim = 8;
  cfg.depth = 1;
  cfg.num_heads = 2;
  cfg.decoder_embed_dim = 12;
  cfg.decoder_depth = 1;
  cfg.decoder_num_heads = 3;
  cfg.mlp_ratio = 2;
  cfg.mask_ratio = 0.5;
  mae::CpuEigen be;
  mae::MaeViT<double, mae::CpuEigen> model(cfg, be, 2);
  check_table(model.get("pos_embed"), closed_form(8, 3), 8);
  check_table(model.get("decoder_pos_embed"), closed_form(12, 3), 12);
  CHECK_FALSE(model.table().at("pos_embed").trainable);
  CHECK_FALSE(model.table().at("decoder_pos_embed").trainable);
}
