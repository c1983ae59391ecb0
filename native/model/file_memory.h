// A model file's bytes in memory, and the page size they sit in.
//
// Decode reads every weight once per token (about 0.5 GB for 2B4T), so the
// page size decides how many TLB refills a token costs: 4 KB pages mean about
// 130,000 per token, 2 MB pages about 260. On the benchmark VM that is 20-28 %
// of decode speed (docs/kernels.md, "Weights in 2 MB pages").
#pragma once
#include <cstddef>
#include <string>
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

}  // namespace bitnet
