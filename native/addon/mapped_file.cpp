#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "args.h"

namespace bitnet_addon {

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = string(info[0], {"mapFile", "path"});
  auto fail = [&](const std::string& what) -> Napi::Value {
    throw Napi::Error::New(env, "mapFile: cannot map " + path + ": " + what);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    return fail("the file is empty");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  const bool copy = info.Length() > 1 && info[1].ToBoolean().Value();
  void* p = copy ? ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                 : ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    return fail(std::strerror(err));
  }
  if (copy) {
    ::madvise(p, size, MADV_HUGEPAGE);
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::pread(fd, static_cast<char*>(p) + done, std::min<size_t>(size - done, size_t{1} << 30),
                                static_cast<off_t>(done));
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        ::close(fd);
        ::munmap(p, size);
        return fail(n < 0 ? std::strerror(err) : "the file shrank while it was read");
      }
      done += static_cast<size_t>(n);
    }
  } else {
    ::madvise(p, size, MADV_WILLNEED);
  }
  ::close(fd);  // a mapping keeps the file alive
  return Napi::ArrayBuffer::New(env, p, size, [size](Napi::Env, void* data) { ::munmap(data, size); });
}

}  // namespace bitnet_addon
