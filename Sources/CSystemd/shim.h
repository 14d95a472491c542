// libsystemd's sd_notify and journal API (Debian: libsystemd-dev). SD_JOURNAL_SUPPRESS_LOCATION
// keeps sd_journal_sendv from adding CODE_FILE/CODE_LINE of this shim to every entry.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
