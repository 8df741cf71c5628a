// The dashboard's files (src/ui/), compiled into the binary at build time by
// cmake/embed_assets.cmake into <build>/generated/ui_assets.cc: no files are
// read at run time and nothing is fetched from elsewhere.
#pragma once

#include <cstddef>
#include <string_view>

namespace triggers::api {

struct UiAsset {
  std::string_view path;          // file name under /ui/, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  const unsigned char* bytes;
  size_t size;
  std::string_view etag;  // quoted, from the content's SHA-256
};

extern const UiAsset kUiAssets[];
extern const size_t kUiAssetCount;

// The asset named `name` ("index.html", "app.js", ...), or nullptr.
const UiAsset* FindUiAsset(std::string_view name);

}  // namespace triggers::api
