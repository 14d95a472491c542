// libzstd, for .safetensors.zst checkpoints (Debian: libzstd-dev). The advanced API is needed
// for the window-size cap that refuses decompression bombs.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>
