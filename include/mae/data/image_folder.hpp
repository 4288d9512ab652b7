// mae.cpp: ImageFolder, the torchvision.datasets.ImageFolder layout: root/<class>/<image>.
//
// Classes are the sub-directories of root, sorted by name (byte order, like Python's sorted);
// label = position in that list. Each class directory is walked recursively (like torchvision's
// os.walk) and its files are sorted by their path; a file counts as an image when its extension
// is one of png jpg jpeg bmp tga gif ppm pgm (case-insensitive). Samples are listed class by
// class. Files are only listed here; decoding happens in load(), so a bad file is reported (or
// skipped by the loader) when it is read.
#pragma once
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "mae/config.hpp"
#include "mae/data/image.hpp"

namespace mae {

class ImageFolder {
 public:
  explicit ImageFolder(const std::string& root) : root_(root) {
    namespace fs = std::filesystem;
    std::error_code ec;
    MAE_CHECK(fs::exists(root, ec), "ImageFolder '", root, "': does not exist");
    MAE_CHECK(fs::is_directory(root, ec), "ImageFolder '", root, "': is not a directory");

    Index loose_images = 0;  // images directly in root: a common layout mistake, worth a hint
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_directory(ec)) classes_.push_back(it->path().filename().string());
      else if (is_image_file(it->path())) ++loose_images;
    }
    MAE_CHECK(!ec, "ImageFolder '", root, "': cannot list: ", ec.message());
    std::sort(classes_.begin(), classes_.end());

    for (std::size_t c = 0; c < classes_.size(); ++c) {
      std::vector<std::string> files;
      const fs::path dir = fs::path(root) / classes_[c];
      for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec) && is_image_file(it->path())) files.push_back(it->path().string());
      MAE_CHECK(!ec, "ImageFolder '", root, "': cannot list '", dir.string(), "': ", ec.message());
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        paths_.push_back(std::move(f));
        labels_.push_back(int(c));
      }
    }
    MAE_CHECK(!paths_.empty(), "ImageFolder '", root, "': no images found (expected root/<class>/<image> with extension ",
              "png, jpg, jpeg, bmp, tga, gif, ppm or pgm; ", classes_.size(), " class folders",
              loose_images > 0 ? detail::cat(", and ", loose_images, " images directly in root, outside any class folder")
                               : std::string(),
              ")");
  }

  Index size() const { return Index(paths_.size()); }
  const std::string& root() const { return root_; }
  const std::string& path(Index i) const { return paths_.at(std::size_t(i)); }
  int label(Index i) const { return labels_.at(std::size_t(i)); }
  const std::vector<std::string>& classes() const { return classes_; }

  // Decodes sample i as `channels` (1 or 3) channels, floats CHW in [0, 1]. Errors name the file.
  Image load(Index i, int channels) const {
    MAE_CHECK(i >= 0 && i < size(), "ImageFolder '", root_, "': index ", i, " out of range [0, ", size(), ")");
    return load_image(paths_[std::size_t(i)], channels);
  }

  static bool is_image_file(const std::filesystem::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char ch) { return char(std::tolower(ch)); });
    for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".tga", ".gif", ".ppm", ".pgm"})
      if (ext == e) return true;
    return false;
  }

 private:
  std::string root_;
  std::vector<std::string> classes_;
  std::vector<std::string> paths_;
  std::vector<int> labels_;
};

}  // namespace mae
