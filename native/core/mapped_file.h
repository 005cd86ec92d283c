// Read-only view of a whole file through mmap (POSIX).
#pragma once
#include <cstddef>
#include <string>

namespace recscore {

// Owns one mapping. The mapping is private copy-on-write, so a stray write through a JS view
// changes only this process's copy, never the file, and never faults.
class MappedFile {
 public:
  // [sync] Maps the whole file. Throws SystemError naming the path and the OS error, or when the
  // path is not a regular file (opened without blocking, so a FIFO cannot hang the caller).
  explicit MappedFile(const std::string& path);
  // [sync] Maps the whole file open on `fd` (which the caller keeps and closes; the mapping does
  // not need it). Its size comes from fstat of that descriptor. `path` is for messages only.
  MappedFile(int fd, const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }

  // [sync] Unmaps now (idempotent); data() becomes null.
  void close();

 private:
  void map_fd(int fd, const std::string& path);

  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace recscore
