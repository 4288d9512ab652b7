// Shared support for the benchmark programs (STYLE.md §8): timing (warm-up, then repeat until a time
// budget is spent; median, min, max), peak resident memory, a machine line, fixed-width tables and
// machine-readable JSON lines. Header-only, no dependencies beyond the C++ and POSIX libraries.
//
//   Timer: time_it(f, budget) calls f once or more to warm up, then repeats it until `budget`
//          seconds of measured calls have been spent and at least `min_reps` calls were made.
//   Memory: peak_rss_mb() is the process's high-water mark (VmHWM from /proc/self/status, or
//          getrusage's ru_maxrss); reset_peak_rss() lowers it to the current RSS (Linux >= 4.0,
//          `echo 5 > /proc/self/clear_refs`) so each measurement reports its own peak.
//   Output: Table prints aligned columns; Json builds one JSON object per line.
#pragma once
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace mae::bench {

// ---- timing ----------------------------------------------------------------------------------------

struct Stats {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  int reps = 0;
};

struct TimeBudget {
  double budget_s = 1.0;  // seconds of measured calls (after warm-up)
  double warmup_s = 0.0;  // extra warm-up time after the first call
  int min_reps = 3;       // at least this many measured calls, whatever the budget
  int max_reps = 100000;  // at most this many
};

inline Stats summarize(std::vector<double> seconds) {
  Stats s;
  if (seconds.empty()) return s;
  std::sort(seconds.begin(), seconds.end());
  const std::size_t n = seconds.size();
  const double med = n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  s.median_ms = med * 1e3;
  s.min_ms = seconds.front() * 1e3;
  s.max_ms = seconds.back() * 1e3;
  s.reps = int(n);
  return s;
}

// f() is one unit of work. The first call (and any call within warmup_s after it) is not measured:
// it builds primitives, faults in pages and warms caches.
template <class F>
Stats time_it(F&& f, const TimeBudget& b) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  f();
  while (std::chrono::duration<double>(clock::now() - start).count() < b.warmup_s) f();
  std::vector<double> times;
  double spent = 0;
  while ((spent < b.budget_s || int(times.size()) < b.min_reps) && int(times.size()) < b.max_reps) {
    const auto t0 = clock::now();
    f();
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    times.push_back(dt);
    spent += dt;
  }
  return summarize(std::move(times));
}

// ---- memory ----------------------------------------------------------------------------------------

// A "VmXXX:   1234 kB" line of /proc/self/status in MiB; negative when absent.
inline double proc_status_mb(const char* key) {
  std::ifstream in("/proc/self/status");
  const std::string k = std::string(key) + ":";
  for (std::string line; std::getline(in, line);)
    if (line.rfind(k, 0) == 0) return std::atof(line.c_str() + k.size()) / 1024.0;
  return -1;
}

inline double peak_rss_mb() {
  const double hwm = proc_status_mb("VmHWM");
  if (hwm >= 0) return hwm;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / 1024.0;  // kB on Linux
}

inline double current_rss_mb() { return std::max(0.0, proc_status_mb("VmRSS")); }

// Resets the high-water mark to the current RSS; false where the kernel does not support it (then
// peak_rss_mb() is the peak since the process started).
inline bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// ---- machine ---------------------------------------------------------------------------------------

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) break;
      const auto first = line.find_first_not_of(" \t", colon + 1);
      return first == std::string::npos ? "unknown" : line.substr(first);
    }
  return "unknown";
}

inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "?" : a + " " + b + " " + c;
}

// "cpu <model> | <n> cores online | <t> threads | load <1 5 15 min>"
inline std::string machine_line(int threads) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "cpu %s | %ld cores online | %d threads | load %s", cpu_model().c_str(),
                sysconf(_SC_NPROCESSORS_ONLN), threads, load_average().c_str());
  return buf;
}

// ---- formatting ------------------------------------------------------------------------------------

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
inline std::string fmt(const char* f, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      out += fmt("\\u%04x", unsigned(ch));
    } else {
      out += ch;
    }
  }
  return out;
}

// One JSON object, printed on one line: Json().add("config", "tiny32").add("median_ms", 1.5).print().
class Json {
 public:
  Json& add(const std::string& key, const std::string& v) { return raw(key, "\"" + json_escape(v) + "\""); }
  Json& add(const std::string& key, const char* v) { return add(key, std::string(v)); }
  Json& add(const std::string& key, double v, int digits = 6) { return raw(key, fmt("%.*g", digits, v)); }
  Json& add(const std::string& key, long v) { return raw(key, fmt("%ld", v)); }
  Json& add(const std::string& key, int v) { return add(key, long(v)); }
  Json& add(const std::string& key, bool v) { return raw(key, v ? "true" : "false"); }
  Json& raw(const std::string& key, const std::string& v) {
    body_ += (body_.empty() ? "" : ", ") + ("\"" + json_escape(key) + "\": " + v);
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }
  void print() const {
    std::printf("%s\n", str().c_str());
    std::fflush(stdout);
  }

 private:
  std::string body_;
};

// Fixed-width table: columns are (title, width, left-aligned?); rows are pre-formatted strings.
class Table {
 public:
  struct Column {
    std::string title;
    int width;
    bool left;
  };
  explicit Table(std::vector<Column> cols) : cols_(std::move(cols)) {}
  void header() const {
    std::string line, rule;
    for (std::size_t i = 0; i < cols_.size(); ++i) {
      line += cell(cols_[i].title, i);
      rule += std::string(std::size_t(cols_[i].width), '-');
      if (i + 1 < cols_.size()) line += " | ", rule += "-+-";
    }
    std::printf("%s\n%s\n", line.c_str(), rule.c_str());
  }
  void row(const std::vector<std::string>& cells) const {
    std::string line;
    for (std::size_t i = 0; i < cols_.size(); ++i) {
      line += cell(i < cells.size() ? cells[i] : "", i);
      if (i + 1 < cols_.size()) line += " | ";
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

 private:
  std::string cell(const std::string& s, std::size_t i) const {
    const std::size_t w = std::size_t(cols_[i].width);
    if (s.size() >= w) return s;
    const std::string pad(w - s.size(), ' ');
    return cols_[i].left ? s + pad : pad + s;
  }
  std::vector<Column> cols_;
};

// ---- command line ----------------------------------------------------------------------------------

// Minimal flag reader: `--name value` and `--flag`. Unknown flags are reported by the caller.
class Args {
 public:
  Args(int argc, char** argv) : args_(argv + 1, argv + argc), used_(args_.size(), false) {}
  bool flag(const std::string& name) {
    for (std::size_t i = 0; i < args_.size(); ++i)
      if (args_[i] == name) return used_[i] = true;
    return false;
  }
  // The value after the last occurrence of `name`; `fallback` when absent. Missing value: error.
  std::string value(const std::string& name, const std::string& fallback) {
    std::string out = fallback;
    for (std::size_t i = 0; i < args_.size(); ++i)
      if (args_[i] == name) {
        used_[i] = true;
        if (i + 1 >= args_.size()) {
          error_ = name + " needs a value";
          continue;
        }
        used_[i + 1] = true;
        out = args_[++i];
      }
    return out;
  }
  double number(const std::string& name, double fallback) {
    const std::string v = value(name, "");
    if (v.empty()) return fallback;
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (!end || *end) error_ = name + " needs a number, got '" + v + "'";
    return x;
  }
  // Empty when every argument was understood; otherwise what was wrong.
  std::string error() const {
    if (!error_.empty()) return error_;
    for (std::size_t i = 0; i < args_.size(); ++i)
      if (!used_[i]) return "unknown argument '" + args_[i] + "'";
    return "";
  }

 private:
  std::vector<std::string> args_;
  std::vector<bool> used_;
  std::string error_;
};

// Splits "a,b,c" into {"a", "b", "c"} (empty pieces dropped).
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace mae::bench
