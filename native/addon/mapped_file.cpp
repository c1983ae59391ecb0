#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) return fail(std::strerror(err));
  ::madvise(p, size, MADV_WILLNEED);
  return Napi::ArrayBuffer::New(env, p, size, [size](Napi::Env, void* data) { ::munmap(data, size); });
}

}  // namespace bitnet_addon
