// libpng's simplified API (Debian: libpng-dev), for image-folder datasets: it reports errors in
// png_image.message instead of longjmp.
#include <png.h>
