#include "core/ids.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

namespace triggers::core {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int DecodeCrockford(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  const char* p = std::strchr(kCrockford, c);
  if (p == nullptr || c == '\0') return -1;
  return static_cast<int>(p - kCrockford);
}

uint64_t SplitMix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

UlidGenerator::UlidGenerator() {
  uint64_t seed[2] = {0, 0};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(seed), sizeof(seed)) != 1) {
    seed[0] = reinterpret_cast<uintptr_t>(this) ^ 0x12345678;
  }
  uint64_t s = seed[0] ^ (seed[1] << 1);
  state_[0] = SplitMix(s);
  state_[1] = SplitMix(s);
}

UlidGenerator::UlidGenerator(uint64_t seed) {
  state_[0] = SplitMix(seed);
  state_[1] = SplitMix(seed);
}

uint64_t UlidGenerator::NextRandom() {
  // xorshift128+
  uint64_t s1 = state_[0];
  const uint64_t s0 = state_[1];
  state_[0] = s0;
  s1 ^= s1 << 23;
  state_[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return state_[1] + s0;
}

std::string UlidGenerator::Next(std::string_view prefix, int64_t now_ms) {
  if (now_ms <= last_ms_) {
    now_ms = last_ms_;  // never go backwards: keep the order even if the clock does
    if (++rand_lo_ == 0) ++rand_hi_;
  } else {
    last_ms_ = now_ms;
    rand_lo_ = NextRandom();
    // Keep headroom so increments within one millisecond never overflow.
    rand_hi_ = static_cast<uint16_t>(NextRandom() & 0x7fff);
  }
  std::string out;
  out.reserve(prefix.size() + 26);
  out.append(prefix);
  char buf[26];
  uint64_t t = static_cast<uint64_t>(now_ms) & 0xFFFFFFFFFFFFULL;
  for (int i = 9; i >= 0; --i) {
    buf[i] = kCrockford[t & 31];
    t >>= 5;
  }
  // 80 random bits -> 16 chars. Bits: hi(16) lo(64).
  unsigned __int128 r = (static_cast<unsigned __int128>(rand_hi_) << 64) | rand_lo_;
  for (int i = 25; i >= 10; --i) {
    buf[i] = kCrockford[static_cast<int>(r & 31)];
    r >>= 5;
  }
  out.append(buf, 26);
  return out;
}

bool IsValidId(std::string_view id, std::string_view prefix) {
  if (id.size() != prefix.size() + 26 || id.substr(0, prefix.size()) != prefix) return false;
  std::string_view u = id.substr(prefix.size());
  if (u[0] > '7') return false;  // 48-bit time fits in 10 chars only up to '7'
  for (char c : u) {
    if (c < '0' || c > 'Z' || DecodeCrockford(c) < 0 || (c >= 'a')) return false;
  }
  return true;
}

int64_t IdTimeMs(std::string_view id, std::string_view prefix) {
  std::string_view u = id.substr(prefix.size());
  int64_t t = 0;
  for (int i = 0; i < 10; ++i) t = (t << 5) | DecodeCrockford(u[i]);
  return t;
}

std::string UlidBound(int64_t ms, bool upper) {
  std::string out(26, upper ? 'Z' : '0');
  uint64_t t = static_cast<uint64_t>(std::max<int64_t>(0, ms)) & 0xFFFFFFFFFFFFULL;
  for (int i = 9; i >= 0; --i) {
    out[i] = kCrockford[t & 31];
    t >>= 5;
  }
  return out;
}

std::string NewId(std::string_view prefix, int64_t now_ms) {
  thread_local UlidGenerator gen;
  return gen.Next(prefix, now_ms);
}

}  // namespace triggers::core
