// zlib, for gzipped IDX datasets (Debian: zlib1g-dev).
#include <zlib.h>
