#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "errors.h"

namespace recscore {

MappedFile::MappedFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw SystemError("cannot open " + path + ": " + std::strerror(errno));
  try {
    map_fd(fd, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);  // the mapping keeps the file alive
}

MappedFile::MappedFile(int fd, const std::string& path) { map_fd(fd, path); }

void MappedFile::map_fd(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw SystemError("cannot stat " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw SystemError("cannot map " + path + ": not a regular file");
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) throw SystemError("cannot map " + path + ": " + std::strerror(errno));
    data_ = p;
  }
}

MappedFile::~MappedFile() { close(); }

void MappedFile::close() {
  if (data_) ::munmap(data_, size_);
  data_ = nullptr;
}

}  // namespace recscore
