import Foundation

/// SIGTERM/SIGINT turned into a flag that `rrmd train` and `rrmd distill` read at step
/// boundaries: a stop request (save state, exit). The handler only sets a word, which is all a
/// signal handler may safely do. (The daemon gets its stop and reload requests from its
/// ServiceGroup and `ReloadSignalSource` instead.)
public enum ProcessSignals {
    // The words live in memory of their own, reached through constant pointers: a handler then
    // touches neither a lazily initialised global (whose first use would run swift_once inside
    // the handler) nor a Swift variable under exclusivity checking (a handler interrupting a read
    // of the same variable on its thread would be reported as a conflicting access and trap).
    // The pointer is created by `installStopHandlers` before any handler can run.
    private static let stopFlag: UnsafeMutablePointer<sig_atomic_t> = {
        let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    /// Whether SIGTERM or SIGINT arrived.
    public static var stopRequested: Bool { stopFlag.pointee != 0 }

    /// Routes SIGTERM and SIGINT to the stop flag; a second SIGINT kills as usual (the handler
    /// restores the default action), so an impatient Ctrl-C still works.
    public static func installStopHandlers() {
        _ = stopFlag  // initialised here, not in a handler
        signal(SIGTERM) { _ in ProcessSignals.stopFlag.pointee = 1 }
        signal(SIGINT) { s in
            ProcessSignals.stopFlag.pointee = 1
            signal(s, SIG_DFL)
        }
    }
}
