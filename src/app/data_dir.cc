#include "app/data_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "aws/secret_box.h"

namespace triggers::app {
namespace {

// The files Triggers keeps in a data directory.
constexpr const char* kFiles[] = {"triggers.db", "triggers.db-wal",       "triggers.db-shm",
                                  "admin.key",   aws::kServerKeyFileName, kLockFileName};

std::string Mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string Errno(int err) { return std::strerror(err); }

// "a/b/" -> "a/b"; "/" stays.
std::string WithoutTrailingSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

// True when every entry of `dir` is one Triggers makes (any "triggers.*", as
// SQLite may add its own suffixes, admin.key and the AWS server key) or
// lost+found (the root of a filesystem of its own). Such a directory is
// Triggers' alone.
bool HoldsOnlyTriggersFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool only = true;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == ".." || name == "admin.key" || name == "lost+found" ||
        name == aws::kServerKeyFileName || name.starts_with("triggers.")) {
      continue;
    }
    only = false;
    break;
  }
  ::closedir(d);
  return only;
}

Status CreateDir(const std::string& dir) {
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return Status::Unavailable("cannot create --data-dir " + dir + ": " + ec.message());
  }
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Status::Ok();  // made meanwhile: checked as an existing one
    return Status::Unavailable("cannot create --data-dir " + dir + ": " + Errno(errno));
  }
  // The umask can only have narrowed 0700; make it exactly that.
  if (::chmod(dir.c_str(), 0700) != 0) {
    return Status::Unavailable("cannot set the mode of --data-dir " + dir + ": " + Errno(errno));
  }
  return Status::Ok();
}

// The PID written in a lock file, or 0. The holder writes it right after
// taking the lock, so a file still empty is read again a few times.
long ReadHolderPid(int fd) {  // NOLINT(runtime/int)
  for (int attempt = 0; attempt < 10; ++attempt) {
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n > 0) {
      long pid = 0;  // NOLINT(runtime/int)
      for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) {
        pid = pid * 10 + (buf[i] - '0');
        if (pid > 1'000'000'000) return 0;
      }
      if (pid > 0) return pid;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

}  // namespace

Status PrepareDataDir(const std::string& given, bool create, std::vector<std::string>* warnings) {
  const std::string dir = WithoutTrailingSlashes(given);
  if (dir.empty()) return Status::Validation("--data-dir must not be empty");
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    int err = errno;
    if (err != ENOENT) {
      return Status::Unavailable("cannot read --data-dir " + dir + ": " + Errno(err));
    }
    if (!create) {
      return Status::NotFound("--data-dir " + dir +
                              " does not exist (check the path; `triggers serve` creates it)");
    }
    if (Status s = CreateDir(dir); !s.ok()) return s;
    if (::stat(dir.c_str(), &st) != 0) {
      return Status::Unavailable("cannot read --data-dir " + dir + ": " + Errno(errno));
    }
  }
  if (!S_ISDIR(st.st_mode)) return Status::Validation("--data-dir " + dir + " is not a directory");

  if ((st.st_mode & 077) != 0) {
    const std::string was = Mode(st.st_mode);
    if (st.st_uid == ::geteuid() && HoldsOnlyTriggersFiles(dir) &&
        ::chmod(dir.c_str(), 0700) == 0) {
      warnings->push_back("--data-dir " + dir + " had mode " + was +
                          " (open to other users); set to 0700");
    } else {
      warnings->push_back(
          "--data-dir " + dir + " has mode " + was +
          ", open to other users, and was left so (it is not this user's, or it holds files "
          "that are not Triggers'): make it 0700, or use a directory of Triggers' own");
    }
  }
  for (const char* name : kFiles) {
    const std::string path = dir + "/" + name;
    struct stat fs;
    if (::lstat(path.c_str(), &fs) != 0 || !S_ISREG(fs.st_mode) || (fs.st_mode & 077) == 0) {
      continue;
    }
    const std::string was = Mode(fs.st_mode);
    if (::chmod(path.c_str(), 0600) == 0) {
      warnings->push_back(path + " had mode " + was + " (open to other users); set to 0600");
    } else {
      const std::string why = Errno(errno);
      warnings->push_back(path + " has mode " + was +
                          ", open to other users, and cannot be set to 0600 (" + why +
                          "): fix it by hand");
    }
  }
  return Status::Ok();
}

Status CreatePrivateFile(const std::string& path, bool* created) {
  *created = false;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::Ok();
    return Status::Unavailable("cannot create " + path + ": " + Errno(errno));
  }
  *created = true;
  int rc = ::fchmod(fd, 0600);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::Unavailable("cannot set the mode of " + path + ": " + Errno(err));
  return Status::Ok();
}

Status DataDirLock::Acquire(const std::string& given, std::unique_ptr<DataDirLock>* out) {
  const std::string dir = WithoutTrailingSlashes(given);
  const std::string path = dir + "/" + kLockFileName;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Unavailable("cannot open " + path + ": " + Errno(errno));
  struct stat st;
  if (::fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) ::fchmod(fd, 0600);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err != EWOULDBLOCK) {
      ::close(fd);
      return Status::Unavailable("cannot lock " + path + ": " + Errno(err));
    }
    long pid = ReadHolderPid(fd);  // NOLINT(runtime/int)
    ::close(fd);
    return Status::Conflict(dir + " is in use by " +
                            (pid > 0 ? "PID " + std::to_string(pid) : "another process") +
                            " (it holds " + path + ")");
  }
  // Ours: the PID for whoever finds it locked. The lock itself is what
  // counts; a PID left in an unlocked file after a crash means nothing.
  std::string line = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) {
    int err = errno;
    ::close(fd);
    return Status::Unavailable("cannot write " + path + ": " + Errno(err));
  }
  out->reset(new DataDirLock(fd));
  return Status::Ok();
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace triggers::app
