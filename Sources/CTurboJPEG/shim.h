// libjpeg-turbo's TurboJPEG API (Debian: libturbojpeg0-dev), for image-folder datasets: errors
// come back as return codes, where libjpeg's classic API would exit() or longjmp.
#include <turbojpeg.h>
