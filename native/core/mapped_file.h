// Read-only view of a whole file through mmap (POSIX).
#pragma once
#include <cstddef>
#include <string>

namespace recscore {

// Owns one mapping. The mapping is private copy-on-write, so a stray write through a JS view
// changes only this process's copy, never the file, and never faults.
class MappedFile {
 public:
  // [sync] Maps the whole file. Throws SystemError naming the path and the OS error.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }

  // [sync] Unmaps now (idempotent); data() becomes null.
  void close();

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace recscore
