// ImageFolder listing, image decoding (gray <-> RGB), PNG writing, and errors that name the file.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "support/temp_dir.hpp"
#include "mae/data/image_folder.hpp"

namespace fs = std::filesystem;
using Catch::Contains;
using Pixels = std::vector<unsigned char>;

namespace {

using mae::test::TempDir;

// 4 x 3 RGB test pattern, HWC: pixel (y, x) = (10 + 60x, 20 + 70y, 200 - 40x).
Pixels rgb_pattern() {
  Pixels p;
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x) {
      p.push_back((unsigned char)(10 + 60 * x));
      p.push_back((unsigned char)(20 + 70 * y));
      p.push_back((unsigned char)(200 - 40 * x));
    }
  return p;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("load_image decodes RGB and gray PNG/BMP, converting channels on request", "[image]") {
  TempDir dir("image_load");
  const Pixels rgb = rgb_pattern();
  mae::write_png(dir.file("rgb.png"), rgb, 4, 3, 3);
  REQUIRE(stbi_write_bmp(dir.file("rgb.bmp").c_str(), 4, 3, 3, rgb.data()) != 0);
  const Pixels gray = {0, 51, 102, 153, 204, 255};  // 3 x 2
  mae::write_png(dir.file("gray.png"), gray, 3, 2, 1);
  CHECK_FALSE(fs::exists(dir.file("rgb.png.tmp")));

  for (const char* name : {"rgb.png", "rgb.bmp"}) {
    INFO(name);
    const mae::Image img = mae::load_image(dir.file(name), 3);
    REQUIRE(img.channels == 3);
    REQUIRE(img.height == 3);
    REQUIRE(img.width == 4);
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x)
        for (int c = 0; c < 3; ++c) CHECK(img.at(c, y, x) == rgb[(y * 4 + x) * 3 + c] / 255.0f);

    const mae::Image g = mae::load_image(dir.file(name), 1);  // stb: (77 r + 150 g + 29 b) >> 8
    REQUIRE(g.channels == 1);
    const int r = rgb[(2 * 4 + 1) * 3], gg = rgb[(2 * 4 + 1) * 3 + 1], b = rgb[(2 * 4 + 1) * 3 + 2];
    CHECK(g.at(0, 2, 1) == float((77 * r + 150 * gg + 29 * b) >> 8) / 255.0f);
  }

  const mae::Image g3 = mae::load_image(dir.file("gray.png"), 3);  // gray replicated
  REQUIRE(g3.channels == 3);
  REQUIRE(g3.height == 2);
  REQUIRE(g3.width == 3);
  for (int c = 0; c < 3; ++c) CHECK(g3.at(c, 1, 2) == 1.0f);
  CHECK(g3.at(1, 0, 1) == Approx(0.2f));
  CHECK(mae::load_image(dir.file("gray.png"), 1).pixels == std::vector<float>(
                                                                {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f}));

  // write_png(Image) round-trips 8-bit values exactly.
  mae::write_png(dir.file("again.png"), mae::load_image(dir.file("rgb.png"), 3));
  CHECK(mae::load_image(dir.file("again.png"), 3).pixels == mae::load_image(dir.file("rgb.png"), 3).pixels);
  CHECK_THROWS_AS(mae::load_image(dir.file("rgb.png"), 2), mae::Error);
}

TEST_CASE("undecodable files are errors naming the file", "[image]") {
  TempDir dir("image_bad");
  const Pixels rgb = rgb_pattern();
  mae::write_png(dir.file("good.png"), rgb, 4, 3, 3);
  const auto size = fs::file_size(dir.file("good.png"));
  fs::copy_file(dir.file("good.png"), dir.file("truncated.png"));
  fs::resize_file(dir.file("truncated.png"), size / 2);
  write_text(dir.file("text.png"), "this is not an image\n");

  for (const char* name : {"truncated.png", "text.png", "missing.png"}) {
    INFO(name);
    CHECK_THROWS_WITH(mae::load_image(dir.file(name), 3),
                      Contains("'" + dir.file(name) + "': cannot decode image: "));
  }
  CHECK_THROWS_WITH(mae::write_png((dir.path / "no_such_dir" / "y.png").string(), rgb, 4, 3, 3),
                    Contains("y.png"));
  CHECK_THROWS_WITH(mae::write_png(dir.file("short.png"), rgb, 5, 3, 3),
                    Contains("short.png") && Contains("expected 45 bytes"));
}

TEST_CASE("ImageFolder lists root/<class>/<image> sorted, by extension, recursively", "[image_folder]") {
  TempDir dir("image_folder");
  const Pixels rgb = rgb_pattern();
  const Pixels gray = {0, 128, 255, 64};
  const std::string root = dir.path.string();
  mae::write_png(dir.file("dog/x.png"), gray, 2, 2, 1);
  mae::write_png(dir.file("cat/b.PNG"), rgb, 4, 3, 3);
  REQUIRE(stbi_write_bmp(dir.file("cat/a.bmp").c_str(), 4, 3, 3, rgb.data()) != 0);
  mae::write_png(dir.file("cat/sub/c.png"), gray, 2, 2, 1);
  write_text(dir.file("cat/notes.txt"), "not an image");
  write_text(dir.file("cat/readme"), "no extension");
  fs::create_directories(dir.path / "empty");
  write_text(dir.file("loose.txt"), "files in root are not classes");

  const mae::ImageFolder folder(root);
  CHECK(folder.root() == root);
  CHECK(folder.classes() == std::vector<std::string>{"cat", "dog", "empty"});
  REQUIRE(folder.size() == 4);
  CHECK(folder.path(0) == dir.file("cat/a.bmp"));
  CHECK(folder.path(1) == dir.file("cat/b.PNG"));
  CHECK(folder.path(2) == dir.file("cat/sub/c.png"));
  CHECK(folder.path(3) == dir.file("dog/x.png"));
  CHECK(folder.label(0) == 0);
  CHECK(folder.label(2) == 0);
  CHECK(folder.label(3) == 1);

  const mae::Image a = folder.load(0, 3);
  CHECK(a.channels == 3);
  CHECK(a.height == 3);
  CHECK(a.width == 4);
  const mae::Image x = folder.load(3, 3);  // gray file as RGB
  CHECK(x.channels == 3);
  CHECK(x.at(2, 0, 1) == Approx(128 / 255.0f));
  const mae::Image b1 = folder.load(1, 1);
  CHECK(b1.channels == 1);
  CHECK_THROWS_WITH(folder.load(4, 3), Contains(root) && Contains("out of range"));

  CHECK(mae::ImageFolder::is_image_file("a/b.JpEg"));
  CHECK(mae::ImageFolder::is_image_file("x.tga"));
  CHECK(mae::ImageFolder::is_image_file("x.pgm"));
  CHECK_FALSE(mae::ImageFolder::is_image_file("x.png.txt"));
  CHECK_FALSE(mae::ImageFolder::is_image_file("png"));
}

TEST_CASE("ImageFolder reports a truncated image by its path on load", "[image_folder]") {
  TempDir dir("image_folder_trunc");
  mae::write_png(dir.file("a/good.png"), rgb_pattern(), 4, 3, 3);
  fs::copy_file(dir.file("a/good.png"), dir.file("a/trunc.png"));
  fs::resize_file(dir.file("a/trunc.png"), fs::file_size(dir.file("a/good.png")) - 20);
  const mae::ImageFolder folder(dir.path.string());
  REQUIRE(folder.size() == 2);
  CHECK_NOTHROW(folder.load(0, 3));
  CHECK_THROWS_WITH(folder.load(1, 3), Contains("'" + dir.file("a/trunc.png") + "': cannot decode image"));
}

TEST_CASE("ImageFolder errors name the root: missing, not a directory, no images", "[image_folder]") {
  TempDir dir("image_folder_err");
  const std::string root = dir.path.string();
  CHECK_THROWS_WITH(mae::ImageFolder(root), Contains(root) && Contains("no images"));  // empty

  fs::create_directories(dir.path / "cls");
  write_text(dir.file("cls/a.txt"), "x");
  CHECK_THROWS_WITH(mae::ImageFolder(root), Contains(root) && Contains("no images") && Contains("1 class"));

  mae::write_png(dir.file("loose.png"), {1, 2, 3, 4}, 2, 2, 1);  // image outside any class
  CHECK_THROWS_WITH(mae::ImageFolder(root), Contains(root) && Contains("directly in root"));

  CHECK_THROWS_WITH(mae::ImageFolder(dir.file("absent")), Contains(dir.file("absent")) && Contains("does not exist"));
  CHECK_THROWS_WITH(mae::ImageFolder(dir.file("loose.png")),
                    Contains(dir.file("loose.png")) && Contains("not a directory"));
}
