// libinotifytools, the spool watcher's inotify wrapper (Debian: libinotifytools0-dev).
#include <sys/inotify.h>
#include <inotifytools/inotifytools.h>
#include <inotifytools/inotify.h>
