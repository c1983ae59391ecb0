// load_file against the file's own bytes, mapped and copied; its errors; the
// regrouping of a file that the page cache holds in small folios into 2 MB
// pages; and ZeroedPages, committed as written.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "file_memory.h"

using namespace bitnet;

namespace {

// A file in the working directory (the build folder: the filesystem the
// project's model cache is most likely on), removed at scope exit.
struct TempFile {
  std::string path;
  explicit TempFile(const char* name) : path(std::string("file_memory_") + name + "_" + std::to_string(::getpid())) {}
  ~TempFile() { ::unlink(path.c_str()); }
};

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// Writes in `chunk`-byte writes, which decides the size of the folios the page
// cache keeps, then fsyncs so that those pages are clean and may be dropped.
void write_file(const std::string& path, const std::vector<uint8_t>& bytes, size_t chunk) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  CHECK(fd >= 0);
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, std::min(chunk, bytes.size() - done));
    CHECK(n > 0);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  CHECK(::fsync(fd) == 0);
  ::close(fd);
}

bool holds(const FileMemory& m, const std::vector<uint8_t>& bytes) {
  return m.size == bytes.size() && std::memcmp(m.data, bytes.data(), bytes.size()) == 0;
}

std::string load_error(const std::string& path) {
  try {
    unload_file(load_file(path, FileResidence::mapped, {}));
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

size_t aligned_part(size_t size) { return size & ~(kHugePageBytes - 1); }

}  // namespace

TEST_CASE(load_file_holds_the_files_bytes_mapped_and_copied) {
  const TempFile file("bytes");
  const std::vector<uint8_t> bytes = random_bytes(3 * kHugePageBytes + 12345, 1);
  write_file(file.path, bytes, 4096);
  for (const FileResidence residence : {FileResidence::mapped, FileResidence::copied}) {
    const FileMemory m = load_file(file.path, residence, {});
    CHECK(holds(m, bytes));
    CHECK(reinterpret_cast<uintptr_t>(m.data) % kHugePageBytes == 0);
    static_cast<uint8_t*>(m.data)[7] ^= 0xff;  // private: the file keeps its byte
    unload_file(m);
  }
  const FileMemory again = load_file(file.path, FileResidence::mapped, {});
  CHECK(holds(again, bytes));
  unload_file(again);
}

TEST_CASE(load_file_names_what_is_wrong) {
  CHECK(load_error("no_such_model_file.bitnet").find("open: No such file") != std::string::npos);
  CHECK(load_error(".") == "not a regular file");
  const TempFile empty("empty");
  write_file(empty.path, {}, 4096);
  CHECK(load_error(empty.path) == "the file is empty");
}

TEST_CASE(mapping_regroups_a_file_cached_in_small_folios_into_2mb_pages) {
  // The control: a file maps with 2 MB entries wherever the filesystem caches
  // large folios (ext4 from Linux 6.16), written as here in 2 MB-aligned 8 MB
  // writes, or regrouped.
  const TempFile control("control");
  const std::vector<uint8_t> control_bytes = random_bytes(4 * kHugePageBytes + 4096, 2);
  write_file(control.path, control_bytes, 4 * kHugePageBytes);
  const FileMemory c = load_file(control.path, FileResidence::mapped, {{0, control_bytes.size()}});
  CHECK(holds(c, control_bytes));
  const long long control_huge = huge_page_bytes(c.data, c.size);
  unload_file(c);
  if (control_huge < 0) {
    std::printf("  (not checked: this kernel cannot report page sizes)\n");
    return;
  }
  if (control_huge != static_cast<long long>(aligned_part(control_bytes.size()))) {
    std::printf("  (not checked: this filesystem does not cache files in 2 MB folios)\n");
    return;
  }
  // Written 4 KB at a time, the file is cached in 4 KB folios.
  const TempFile small("small");
  const std::vector<uint8_t> bytes = random_bytes(5 * kHugePageBytes + 777, 3);
  write_file(small.path, bytes, 4096);
  const FileMemory m = load_file(small.path, FileResidence::mapped, {{0, bytes.size()}});
  CHECK(huge_page_bytes(m.data, m.size) == static_cast<long long>(aligned_part(bytes.size())));
  CHECK(holds(m, bytes));
  // Only the range asked for counts: part of one page, and the tail past the last 2 MB boundary.
  const char* data = static_cast<const char*>(m.data);
  CHECK(huge_page_bytes(data + 10, 20) == 20);
  CHECK(huge_page_bytes(data + 5 * kHugePageBytes, 777) == 0);
  unload_file(m);

  // Only the streamed ranges are faulted in at load, widened to 2 MB:
  // [2 MB + 5, 2 MB + 105) and [3 MB, 3 MB + 1) take the second 2 MB piece,
  // a range past the end nothing. The others are mapped in small pages when
  // read, although this file, written in 8 MB writes, is cached in 2 MB folios.
  const TempFile partial("partial");
  write_file(partial.path, bytes, 4 * kHugePageBytes);
  const size_t mb = kHugePageBytes / 2;
  const FileMemory p = load_file(partial.path, FileResidence::mapped, {{3 * mb, 1}, {2 * mb + 5, 100}, {bytes.size(), 8}});
  const char* pd = static_cast<const char*>(p.data);
  CHECK(huge_page_bytes(pd + kHugePageBytes, kHugePageBytes) == static_cast<long long>(kHugePageBytes));
  CHECK(huge_page_bytes(pd, p.size) == static_cast<long long>(kHugePageBytes));
  CHECK(holds(p, bytes));  // faults every page in
  CHECK(huge_page_bytes(pd, p.size) == static_cast<long long>(kHugePageBytes));
  unload_file(p);
}

// Pages of [data, data + size) that the kernel holds (mincore).
size_t resident_pages(const void* data, size_t size) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((size + page - 1) / page);
  CHECK(::mincore(const_cast<void*>(data), size, in.data()) == 0);
  return static_cast<size_t>(std::count_if(in.begin(), in.end(), [](unsigned char v) { return v & 1; }));
}

TEST_CASE(zeroed_pages_are_committed_as_they_are_written) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  ZeroedPages z(64u << 20);
  CHECK(z.size() == 64u << 20);
  CHECK(resident_pages(z.data(), z.size()) == 0);
  // Writes 2 MB apart: each commits its own small page, not the 2 MB around it.
  uint8_t* bytes = static_cast<uint8_t*>(z.data());
  for (size_t at : {size_t{0}, kHugePageBytes + 5, 31 * kHugePageBytes + page - 1}) bytes[at] = 7;
  CHECK(resident_pages(z.data(), z.size()) == 3);
  CHECK(bytes[kHugePageBytes + 5] == 7 && bytes[kHugePageBytes + 4] == 0 && bytes[17 * kHugePageBytes] == 0);

  ZeroedPages moved = std::move(z);
  CHECK(z.data() == nullptr && z.size() == 0);
  CHECK(moved.data() == bytes && static_cast<uint8_t*>(moved.data())[0] == 7);

  moved.release();
  CHECK(resident_pages(moved.data(), moved.size()) == 0);
  bytes[page] = 1;
  CHECK(resident_pages(moved.data(), moved.size()) == 1);
  CHECK(bytes[0] == 0 && bytes[kHugePageBytes + 5] == 0 && bytes[page] == 1);  // counted above: reads map pages
}

int main(int argc, char** argv) { return check::run_all(argc, argv); }
