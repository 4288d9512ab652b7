// Discovery of the reference fixtures: every sub-folder of shared/fixtures/<set>, read through its
// config.json. Nothing about a fixture is hard-coded in a test.
#pragma once
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mae/model/config.hpp"

namespace mae::test {

// A (scalar, backend) pair for TEMPLATE_TEST_CASE: tests run for every combination they list.
template <class T_, class B_>
struct Case {
  using T = T_;
  using B = B_;
};

inline std::string fixtures_root() {
  if (const char* env = std::getenv("MAE_FIXTURES")) return env;
#ifdef MAE_FIXTURES_DIR
  return MAE_FIXTURES_DIR;
#else
  return "../shared/fixtures";
#endif
}

// Sorted fixture folders of a set ("mae_parity", "mae_train"); empty if the set is absent.
inline std::vector<std::string> fixture_dirs(const std::string& set) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  const fs::path root = fs::path(fixtures_root()) / set;
  if (!fs::is_directory(root)) return out;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && fs::exists(e.path() / "config.json")) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

inline MaeConfig fixture_config(const std::string& dir, nlohmann::json* raw = nullptr) {
  const nlohmann::json j = read_json(dir + "/config.json");
  MaeConfig c;
  c.apply_json(j, dir + "/config.json", /*require_all=*/true, /*allow_unknown=*/true);
  if (raw) *raw = j;
  return c;
}

}  // namespace mae::test
