#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "args.h"

namespace bitnet_addon {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// Bytes copied and swapped in per step of promoteMapping: the most extra memory it holds.
constexpr size_t kPromoteSlice = size_t{32} << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// One file mapping made by mapFile: kept (with its file) until the buffer is collected.
struct Mapping {
  uint8_t* base;
  size_t length;  // the file size rounded up to whole pages: what is mapped
  size_t file_size;
  int fd;         // kept open to read from when promoting
};

// Mappings by base address, so that promoteMapping accepts only mapFile's buffers.
std::mutex registry_mutex;
std::map<const void*, Mapping> registry;

// Anonymous memory of `length` bytes (a multiple of the page size) starting on a
// 2 MiB boundary; PROT_NONE reserves address space only.
uint8_t* map_aligned(size_t length, int prot) {
  void* raw = ::mmap(nullptr, length + kHugePage, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  auto* start = static_cast<uint8_t*>(raw);
  auto* aligned = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(start), kHugePage));
  if (aligned > start) ::munmap(start, static_cast<size_t>(aligned - start));
  const size_t tail = static_cast<size_t>(start + length + kHugePage - (aligned + length));
  if (tail > 0) ::munmap(aligned + length, tail);
  return aligned;
}

// Reads [offset, offset + length) of fd into out; false with errno set on failure.
bool read_fully(int fd, uint8_t* out, size_t length, size_t offset) {
  for (size_t done = 0; done < length;) {
    const ssize_t n = ::pread(fd, out + done, std::min<size_t>(length - done, size_t{1} << 30),
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;  // the file shrank
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

void release(Napi::Env, void* data) {
  Mapping m;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry.find(data);
    if (it == registry.end()) return;
    m = it->second;
    registry.erase(it);
  }
  ::munmap(m.base, m.length);
  ::close(m.fd);
}

// The [start, end) ranges, 2 MiB-aligned, clamped to the mapping and merged.
std::vector<std::pair<size_t, size_t>> huge_page_spans(std::vector<std::pair<size_t, size_t>> ranges, size_t limit) {
  for (auto& r : ranges) r = {r.first / kHugePage * kHugePage, std::min(round_up(r.second, kHugePage), limit)};
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<size_t, size_t>> spans;
  for (const auto& r : ranges) {
    if (r.first >= r.second) continue;
    if (!spans.empty() && r.first <= spans.back().second)
      spans.back().second = std::max(spans.back().second, r.second);
    else
      spans.push_back(r);
  }
  return spans;
}

class PromoteWorker : public Napi::AsyncWorker {
 public:
  PromoteWorker(Napi::Env env, Napi::ArrayBuffer buffer, Mapping mapping, std::vector<std::pair<size_t, size_t>> spans)
      : Napi::AsyncWorker(env, "bitnet-gen:promoteMapping"),
        deferred_(Napi::Promise::Deferred::New(env)),
        buffer_ref_(Napi::Persistent(buffer)),
        mapping_(mapping),
        spans_(std::move(spans)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
#ifdef __linux__
    for (const auto& [start, end] : spans_) {
      for (size_t offset = start; offset < end; offset += kPromoteSlice) {
        const size_t length = std::min(kPromoteSlice, end - offset);
        uint8_t* copy = map_aligned(length, PROT_READ | PROT_WRITE);
        if (!copy) return fail(offset, "mmap");
        ::madvise(copy, length, MADV_HUGEPAGE);
        // Past the end of the file the mapping reads zeros, as the fresh copy does.
        const size_t in_file = offset < mapping_.file_size ? std::min(length, mapping_.file_size - offset) : 0;
        if (!read_fully(mapping_.fd, copy, in_file, offset)) {
          const int err = errno;
          ::munmap(copy, length);
          errno = err;
          return fail(offset, "read");
        }
        if (::mremap(copy, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, mapping_.base + offset) == MAP_FAILED) {
          const int err = errno;
          ::munmap(copy, length);
          errno = err;
          return fail(offset, "mremap");
        }
        moved_ += length;
      }
    }
#endif
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(moved_))); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  void fail(size_t offset, const char* step) {
    SetError("promoteMapping: " + std::string(step) + " at byte " + std::to_string(offset) + " failed: " +
             std::strerror(errno) + "; the rest stays mapped from the file");
  }

  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::ArrayBuffer> buffer_ref_;  // the mapping outlives the work
  Mapping mapping_;
  std::vector<std::pair<size_t, size_t>> spans_;
  size_t moved_ = 0;
};

}  // namespace

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = string(info[0], {"mapFile", "path"});
  auto fail = [&](const std::string& what) -> Napi::Value {
    throw Napi::Error::New(env, "mapFile: cannot map " + path + ": " + what);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  auto close_and_fail = [&](int err, const std::string& what) -> Napi::Value {
    ::close(fd);
    return fail(what.empty() ? std::strerror(err) : what);
  };
  struct stat st;
  if (::fstat(fd, &st) != 0) return close_and_fail(errno, "");
  if (!S_ISREG(st.st_mode)) return close_and_fail(0, "not a regular file");
  if (st.st_size == 0) return close_and_fail(0, "the file is empty");
  const size_t size = static_cast<size_t>(st.st_size);
  const size_t length = round_up(size, static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  const bool copy = info.Length() > 1 && info[1].ToBoolean().Value();
  uint8_t* base = map_aligned(length, copy ? PROT_READ | PROT_WRITE : PROT_NONE);
  if (!base) return close_and_fail(errno, "");
  if (copy) {
#ifdef MADV_HUGEPAGE
    ::madvise(base, length, MADV_HUGEPAGE);
#endif
    if (!read_fully(fd, base, size, 0)) {
      const int err = errno;
      ::munmap(base, length);
      return close_and_fail(err, err == EIO ? "the file shrank while it was read" : "");
    }
    ::close(fd);
    return Napi::ArrayBuffer::New(env, base, size, [length](Napi::Env, void* data) { ::munmap(data, length); });
  }
  if (::mmap(base, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) {
    const int err = errno;
    ::munmap(base, length);
    return close_and_fail(err, "");
  }
  ::madvise(base, length, MADV_WILLNEED);
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry[base] = Mapping{base, length, size, fd};
  }
  return Napi::ArrayBuffer::New(env, base, size, release);
}

Napi::Value PromoteMapping(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Arg buffer_arg{"promoteMapping", "buffer"};
  if (!info[0].IsArrayBuffer()) throw_type_error(env, buffer_arg, "an ArrayBuffer returned by mapFile()");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  Mapping mapping;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = registry.find(buffer.Data());
    if (it == registry.end()) throw_type_error(env, buffer_arg, "an ArrayBuffer returned by mapFile() without copy");
    mapping = it->second;
  }
  const Arg ranges_arg{"promoteMapping", "ranges"};
  const Napi::Array list = array(info[1], ranges_arg);
  std::vector<std::pair<size_t, size_t>> ranges;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Arg r = ranges_arg.element(i);
    const Napi::Array pair = array(list.Get(i), r);
    const size_t offset = integer(pair.Get(0u), r.element(0), 0, mapping.file_size);
    const size_t length = integer(pair.Get(1u), r.element(1), 0, mapping.file_size - offset);
    ranges.emplace_back(offset, offset + length);
  }
  auto* worker = new PromoteWorker(env, buffer, mapping, huge_page_spans(std::move(ranges), mapping.length));
  worker->Queue();
  return worker->promise();
}

}  // namespace bitnet_addon
