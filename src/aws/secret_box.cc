#include "aws/secret_box.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/crypto.h"

namespace triggers::aws {
namespace {

constexpr size_t kKeyBytes = 32, kNonceBytes = 12, kTagBytes = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

Status ReadKeyFile(const std::string& path, std::string* key) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  }
  char buf[kKeyBytes + 1];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n != static_cast<ssize_t>(kKeyBytes)) {
    return Status::Validation(path + " must hold exactly 32 bytes");
  }
  key->assign(buf, kKeyBytes);
  return Status::Ok();
}

// Created with O_EXCL: two processes racing to create it cannot both win;
// the loser reads the winner's file.
Status CreateKeyFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::Ok();
    return Status::Internal("cannot create " + path + ": " + std::strerror(errno));
  }
  ::fchmod(fd, 0600);
  std::string key = core::RandomBytes(kKeyBytes);
  bool ok =
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return Status::Internal("cannot write " + path);
  }
  return Status::Ok();
}

}  // namespace

Status SecretBox::Load(const std::string& data_dir, bool create, SecretBox* out) {
  std::string path = data_dir + "/" + kServerKeyFileName;
  Status s = ReadKeyFile(path, &out->key_);
  if (s.IsNotFound() && create) {
    if (Status c = CreateKeyFile(path); !c.ok()) return c;
    s = ReadKeyFile(path, &out->key_);
  }
  return s;
}

SecretBox SecretBox::FromKey(std::string key) {
  SecretBox b;
  b.key_ = std::move(key);
  return b;
}

std::string SecretBox::Seal(std::string_view plain, std::string_view bound_to) const {
  std::string nonce = core::RandomBytes(kNonceBytes);
  std::string out = nonce;
  out.resize(kNonceBytes + plain.size() + kTagBytes);
  auto* ct = reinterpret_cast<unsigned char*>(out.data()) + kNonceBytes;
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  if (!ctx || !loaded() ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key_), U(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(bound_to), static_cast<int>(bound_to.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, U(plain), static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, ct + plain.size()) != 1) {
    return {};
  }
  return out;
}

bool SecretBox::Open(std::string_view sealed, std::string_view bound_to, std::string* plain) const {
  if (!loaded() || sealed.size() < kNonceBytes + kTagBytes) return false;
  std::string_view nonce = sealed.substr(0, kNonceBytes);
  std::string_view ct = sealed.substr(kNonceBytes, sealed.size() - kNonceBytes - kTagBytes);
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  plain->assign(ct.size(), '\0');
  auto* pt = reinterpret_cast<unsigned char*>(plain->data());
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key_), U(nonce)) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(bound_to), static_cast<int>(bound_to.size())) ==
          1 &&
      EVP_DecryptUpdate(ctx.get(), pt, &len, U(ct), static_cast<int>(ct.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), pt + len, &fin) == 1;
  if (!ok) plain->clear();
  return ok;
}

}  // namespace triggers::aws
