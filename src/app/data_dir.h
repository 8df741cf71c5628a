// The data directory (--data-dir) as the commands use it:
//
// - Only `triggers serve` creates it (mode 0700; missing parents get the
//   default mode). The other commands refuse a missing one, creating nothing.
// - Every file Triggers puts there is 0600 whatever the umask: triggers.db
//   is created empty with that mode before SQLite opens it, and SQLite gives
//   its -wal and -shm the database's mode; admin.key and triggers.lock are
//   created 0600 and fchmod'ed.
// - Looser modes found on an existing directory or its Triggers files are
//   tightened where that is safe, else warned about (PrepareDataDir).
// - One `triggers serve` per SQLite data directory: an exclusive flock on
//   <data-dir>/triggers.lock, which holds the PID of the holder (DataDirLock).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "triggers/status.h"

namespace triggers::app {

inline constexpr const char* kLockFileName = "triggers.lock";

// Makes sure `dir` is a usable data directory.
// - Missing: with `create`, made with mode 0700 (then chmod 0700, so a
//   umask cannot leave it narrower or wider); without, NotFound and
//   nothing is created.
// - Not a directory: Validation.
// - Group or other permission bits on the directory: set to 0700 when it
//   belongs to this user and holds nothing but Triggers' files (and
//   lost+found); otherwise (a shared directory such as a home or /tmp, or
//   someone else's) left alone. Either way one line in *warnings says so.
// - Group or other bits on triggers.db, -wal, -shm, admin.key or
//   triggers.lock: chmod 0600, with a line in *warnings (or a line saying
//   that it could not be done).
Status PrepareDataDir(const std::string& dir, bool create, std::vector<std::string>* warnings);

// Creates `path` empty with mode 0600 unless it exists (then nothing).
// Sets *created when this call made it.
Status CreatePrivateFile(const std::string& path, bool* created);

// The exclusive lock of a data directory, held from Acquire() until
// destroyed (or until the process ends, however it ends: flock locks go
// with the descriptor).
class DataDirLock {
 public:
  // Creates <dir>/triggers.lock (0600) if missing and takes flock(LOCK_EX)
  // on it without waiting; then writes this process's PID into it. When
  // another process holds it: Conflict, "<dir> is in use by PID <n> (it
  // holds <dir>/triggers.lock)", or "by another process" when its PID
  // cannot be read. The directory must exist.
  static Status Acquire(const std::string& dir, std::unique_ptr<DataDirLock>* out);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace triggers::app
