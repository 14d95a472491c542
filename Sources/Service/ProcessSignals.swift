import Foundation

/// SIGTERM/SIGINT and SIGHUP turned into flags that long work reads at step boundaries: a stop
/// request (save state, exit) and a reload request (re-read the configuration between jobs).
/// Handlers only set a word, which is all a signal handler may safely do.
public enum ProcessSignals {
    nonisolated(unsafe) private static var stopFlag: sig_atomic_t = 0
    nonisolated(unsafe) private static var reloadFlag: sig_atomic_t = 0

    /// Whether SIGTERM or SIGINT arrived.
    public static var stopRequested: Bool { stopFlag != 0 }

    /// Whether SIGHUP arrived since the last `takeReloadRequest()`.
    public static func takeReloadRequest() -> Bool {
        guard reloadFlag != 0 else { return false }
        reloadFlag = 0
        return true
    }

    /// Routes SIGTERM and SIGINT to the stop flag; a second SIGINT kills as usual (the handler
    /// restores the default action), so an impatient Ctrl-C still works.
    public static func installStopHandlers() {
        signal(SIGTERM) { _ in ProcessSignals.stopFlag = 1 }
        signal(SIGINT) { s in
            ProcessSignals.stopFlag = 1
            signal(s, SIG_DFL)
        }
    }

    /// Routes SIGHUP to the reload flag.
    public static func installReloadHandler() {
        signal(SIGHUP) { _ in ProcessSignals.reloadFlag = 1 }
    }
}
