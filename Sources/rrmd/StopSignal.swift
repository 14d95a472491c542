import Foundation

/// Ctrl-C (SIGINT) and SIGTERM, turned into a request that a long run stops at its next step
/// boundary and saves its state, instead of dying with the work of the epoch lost.
enum StopSignal {
    /// Set from the signal handler; only ever goes from 0 to 1, so a plain word is enough.
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    /// Whether a stop was requested.
    static var requested: Bool { flag != 0 }

    /// Routes SIGINT and SIGTERM to the flag. A second Ctrl-C still kills the process, since the
    /// handler restores the default action after the first.
    static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in
                StopSignal.flag = 1
                signal(s, SIG_DFL)
            }
        }
    }
}
