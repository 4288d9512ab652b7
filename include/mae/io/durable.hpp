// Durability for the write-to-a-temporary-then-rename pattern: flush the temporary file's data to
// disk before the rename, and the folder's entry after it, so a power loss or OS crash leaves either
// the old file or the complete new one under the final name. Failures to sync are reported by the
// callers as errors naming the path.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace mae::io {

// fsync(2) of a file or folder; false if it cannot be opened or synced.
inline bool sync_path(const std::string& path, bool directory = false) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

inline std::string parent_dir(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// A temporary name beside `path`, unique to this process: "<path>.tmp.<pid>".
inline std::string temp_name(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

}  // namespace mae::io
