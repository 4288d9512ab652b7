// A scratch folder for one test, removed with everything in it when the test ends.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

namespace mae::test {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() / ("mae_" + tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  // A path inside the folder; its parent folders are created ("cls/img.png" makes cls/).
  std::string file(const std::string& name) const {
    const std::filesystem::path p = path / name;
    std::filesystem::create_directories(p.parent_path());
    return p.string();
  }
};

}  // namespace mae::test
