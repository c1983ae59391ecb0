#include "file_memory.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

namespace bitnet {
namespace {

// The kernel's PAGEMAP_SCAN ABI (linux/fs.h, Linux 6.7), declared here because
// build machines' headers may be older than the kernels the addon runs on.
struct PageRegion {
  uint64_t start, end, categories;
};
struct PageMapScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
constexpr unsigned long kPageMapScan = _IOWR('f', 16, PageMapScanArg);
constexpr uint64_t kPageIsHuge = uint64_t{1} << 6;
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older headers lack the name
#endif

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }
[[noreturn]] void fail_errno(const char* step) { fail(std::string(step) + ": " + std::strerror(errno)); }

char* align_up(char* p, size_t alignment) {
  return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + alignment - 1) & ~(uintptr_t{alignment} - 1));
}

// Maps `size` bytes (of `fd`, or anonymous when fd < 0) at a 2 MB-aligned
// address: the kernel maps 2 MB entries only where the virtual address and the
// file offset are both aligned, and older kernels align only anonymous maps.
char* map_aligned(int fd, size_t size) {
  const size_t reserve = size + kHugePageBytes;
  void* r = ::mmap(nullptr, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) fail_errno("mmap");
  char* const start = static_cast<char*>(r);
  char* const aligned = align_up(start, kHugePageBytes);
  const int flags = MAP_PRIVATE | MAP_FIXED | (fd < 0 ? MAP_ANONYMOUS : 0);
  if (::mmap(aligned, size, PROT_READ | PROT_WRITE, flags, fd, 0) == MAP_FAILED) {
    const int err = errno;
    ::munmap(start, reserve);
    errno = err;
    fail_errno("mmap");
  }
  char* const end = align_up(aligned + size, static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  if (aligned > start) ::munmap(start, static_cast<size_t>(aligned - start));
  if (start + reserve > end) ::munmap(end, static_cast<size_t>(start + reserve - end));
  return aligned;
}

// This process's page tables, read with PAGEMAP_SCAN through one descriptor.
class PageMap {
 public:
  PageMap() : fd_(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) {}

  // Calls visit(start, end) for each run of pages that meet [begin, end) and
  // are (huge) or are not (!huge) mapped by 2 MB entries. False where the
  // kernel has no PAGEMAP_SCAN.
  template <class Visit>
  bool scan(const void* begin, const void* end, bool huge, Visit visit) const {
    if (fd_.get() < 0) return false;
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));  // the scan takes whole pages
    const uint64_t last = (reinterpret_cast<uintptr_t>(end) + page - 1) & ~(page - 1);
    PageRegion found[64];
    for (uint64_t from = reinterpret_cast<uintptr_t>(begin) & ~(page - 1); from < last;) {
      PageMapScanArg arg{};
      arg.size = sizeof arg;
      arg.start = from;
      arg.end = last;
      arg.vec = reinterpret_cast<uintptr_t>(found);
      arg.vec_len = 64;
      arg.category_inverted = huge ? 0 : kPageIsHuge;
      arg.category_mask = kPageIsHuge;
      arg.return_mask = kPageIsHuge;
      const long n = ::ioctl(fd_.get(), kPageMapScan, &arg);
      if (n < 0) return false;
      for (long i = 0; i < n; ++i) visit(found[i].start, found[i].end);
      if (arg.walk_end <= from) break;  // the scan stops short only when `found` is full
      from = arg.walk_end;
    }
    return true;
  }

  // huge_page_bytes (file_memory.h).
  long long huge_bytes(const void* data, size_t size) const {
    const uint64_t begin = reinterpret_cast<uintptr_t>(data), end = begin + size;
    long long total = 0;
    const bool known = scan(data, static_cast<const char*>(data) + size, true, [&](uint64_t start, uint64_t stop) {
      total += static_cast<long long>(std::min(stop, end) - std::max(start, begin));
    });
    return known ? total : -1;
  }

 private:
  Fd fd_;
};

// Re-reads each 2 MB range of run [begin, end) (2 MB-aligned offsets) that is
// mapped in small pages, so that the page cache holds it in one 2 MB folio
// (readahead under MADV_HUGEPAGE allocates whole 2 MB folios where none of the
// range is cached). Dropping is safe: nothing has written to the private
// mapping yet, and the file's clean cached pages are only a copy of the file.
// False once a range stays small: nothing later would fare better.
bool regroup_into_huge_pages(const PageMap& pages, int fd, char* data, size_t begin, size_t end) {
  std::vector<char*> small;  // 2 MB-aligned starts, ascending
  pages.scan(data + begin, data + end, false, [&](uint64_t start, uint64_t stop) {
    for (uint64_t a = start & ~uint64_t{kHugePageBytes - 1}; a < stop; a += kHugePageBytes)
      if (small.empty() || small.back() != reinterpret_cast<char*>(a)) small.push_back(reinterpret_cast<char*>(a));
  });
  for (char* range : small) {
    ::madvise(range, kHugePageBytes, MADV_DONTNEED);
    ::posix_fadvise(fd, static_cast<off_t>(range - data), static_cast<off_t>(kHugePageBytes), POSIX_FADV_DONTNEED);
    ::madvise(range, kHugePageBytes, MADV_POPULATE_READ);
    if (pages.huge_bytes(range, kHugePageBytes) != static_cast<long long>(kHugePageBytes)) return false;
  }
  return true;
}

// The streamed ranges widened to 2 MB boundaries, clamped to the file, sorted
// and merged.
std::vector<ByteRange> streamed_runs(std::vector<ByteRange> streamed, size_t file_size) {
  std::vector<ByteRange> runs;
  std::sort(streamed.begin(), streamed.end(), [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  for (const ByteRange& r : streamed) {
    if (r.length == 0 || r.offset >= file_size) continue;
    const size_t begin = r.offset & ~(kHugePageBytes - 1);
    const size_t end = std::min(file_size, (std::min(r.offset + r.length, file_size) + kHugePageBytes - 1) & ~(kHugePageBytes - 1));
    if (!runs.empty() && begin <= runs.back().offset + runs.back().length)
      runs.back().length = std::max(runs.back().length, end - runs.back().offset);
    else
      runs.push_back({begin, end - begin});
  }
  return runs;
}

void read_into(int fd, char* data, size_t size) {
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::pread(fd, data + done, std::min<size_t>(size - done, size_t{1} << 30), static_cast<off_t>(done));
    if (n < 0) fail_errno("read");
    if (n == 0) fail("the file shrank while it was read");
    done += static_cast<size_t>(n);
  }
}

}  // namespace

FileMemory load_file(const std::string& path, FileResidence residence, const std::vector<ByteRange>& streamed) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail_errno("open");
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail_errno("stat");
  if (!S_ISREG(st.st_mode)) fail("not a regular file");
  if (st.st_size == 0) fail("the file is empty");
  FileMemory memory;
  memory.size = static_cast<size_t>(st.st_size);
  memory.data = map_aligned(residence == FileResidence::copied ? -1 : fd.get(), memory.size);
  char* const data = static_cast<char*>(memory.data);
  // Faults on uncached file ranges then read whole 2 MB folios, and anonymous
  // memory is allocated in 2 MB pages.
  ::madvise(data, memory.size, MADV_HUGEPAGE);
  if (residence == FileResidence::copied) {
    try {
      read_into(fd.get(), data, memory.size);
    } catch (...) {
      unload_file(memory);
      throw;
    }
    return memory;
  }
  bool regrouping = ::sysconf(_SC_PAGESIZE) == 4096;  // 2 MB is the PMD size only with 4 KB base pages
  // Outside the streamed runs a token reads an embedding row and a few LM
  // head rows; mapped with 2 MB entries, each would count 2 MB of the file
  // into the process's RSS, so there the kernel maps small pages even where
  // the page cache holds 2 MB folios.
  const PageMap pages;
  size_t cold_begin = 0;
  for (const ByteRange& run : streamed_runs(streamed, memory.size)) {
    if (run.offset > cold_begin) ::madvise(data + cold_begin, run.offset - cold_begin, MADV_NOHUGEPAGE);
    cold_begin = run.offset + run.length;
    // Where MADV_POPULATE_READ is missing (Linux < 5.14) pages fault in during the first token instead.
    ::madvise(data + run.offset, run.length, MADV_POPULATE_READ);
    const size_t whole_pages_end = (run.offset + run.length) & ~(kHugePageBytes - 1);
    if (regrouping && whole_pages_end > run.offset)
      regrouping = regroup_into_huge_pages(pages, fd.get(), data, run.offset, whole_pages_end);
  }
  if (cold_begin < memory.size) ::madvise(data + cold_begin, memory.size - cold_begin, MADV_NOHUGEPAGE);
  return memory;
}

void unload_file(const FileMemory& memory) { ::munmap(memory.data, memory.size); }

ZeroedPages::ZeroedPages(size_t bytes) : size_(bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  ::madvise(p, bytes, MADV_NOHUGEPAGE);
  data_ = p;
}

ZeroedPages::~ZeroedPages() {
  if (data_) ::munmap(data_, size_);
}

void ZeroedPages::release() {
  if (data_) ::madvise(data_, size_, MADV_DONTNEED);
}

long long huge_page_bytes(const void* data, size_t size) { return PageMap().huge_bytes(data, size); }

}  // namespace bitnet
