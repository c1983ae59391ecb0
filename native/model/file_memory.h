// Memory from the OS: a model file's bytes and the page size they sit in, and
// zero-filled memory committed page by page (a session's KV cache).
//
// Decode reads every weight once per token (about 0.5 GB for 2B4T), so the
// page size decides how many TLB refills a token costs: 4 KB pages mean about
// 130,000 per token, 2 MB pages about 260. On the benchmark VM that is 20-28 %
// of decode speed (docs/kernels.md, "Weights in 2 MB pages").
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace bitnet {

enum class FileResidence {
  // Mapped privately: tensors are used in place; a write changes only this
  // process's copy of a page, never the file.
  mapped,
  // Read into anonymous transparent-huge-page memory (llama.cpp's --no-mmap):
  // the file may then change or go away.
  copied,
};

struct FileMemory {
  void* data = nullptr;
  size_t size = 0;  // the file's size in bytes
};

// Bytes [offset, offset + length) of a file.
struct ByteRange {
  size_t offset = 0;
  size_t length = 0;
};

// The page-table entry size this module aims for.
constexpr size_t kHugePageBytes = size_t{2} << 20;

// Brings the file at `path` into memory at a 2 MB-aligned address. Copied, it
// is read whole. Mapped, the `streamed` ranges (what decode reads in full for
// every token) are faulted in at once, widened to 2 MB boundaries; the rest
// faults in when used, in small pages. Where the page cache holds a streamed range in small
// folios (a file written or copied in small writes), its 2 MB pieces are
// dropped from the cache and read again as 2 MB folios, which the kernel then
// maps with 2 MB entries. That regrouping is best effort: it stops at the first
// piece that stays small (dirty pages, pages another process maps, a
// filesystem or kernel without large folios). Throws std::runtime_error naming
// the reason the file cannot be used.
FileMemory load_file(const std::string& path, FileResidence residence, const std::vector<ByteRange>& streamed);

void unload_file(const FileMemory& memory);

// How many bytes of [data, data + size) page tables map with 2 MB entries;
// -1 where the kernel cannot tell (PAGEMAP_SCAN needs Linux 6.7).
long long huge_page_bytes(const void* data, size_t size);

// Zero-filled anonymous memory that the kernel commits a page at a time, on
// first write. A session's KV cache is sized for its whole context (315 MB for
// 2B4T at 4096 tokens) while a short conversation writes a few MB of it; held
// in a std::vector, all of it was resident from the start. Small pages even
// where transparent huge pages are on for everything: one write per 2 MB
// would otherwise commit the 2 MB around it.
class ZeroedPages {
 public:
  ZeroedPages() = default;
  // Throws std::bad_alloc when the address space cannot be had.
  explicit ZeroedPages(size_t bytes);
  ~ZeroedPages();
  ZeroedPages(ZeroedPages&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  ZeroedPages& operator=(ZeroedPages&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ZeroedPages(const ZeroedPages&) = delete;
  ZeroedPages& operator=(const ZeroedPages&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  // Gives every page back to the OS; the memory reads as zeros again.
  void release();

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace bitnet
