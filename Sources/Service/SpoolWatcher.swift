import CInotifyTools
import Foundation
import Spool

/// Why a `SpoolWatcher` could not start watching its directory.
public enum SpoolWatcherError: Error, CustomStringConvertible, Equatable {
    /// The directory does not exist.
    case directoryMissing(String)
    /// The path exists but is not a directory.
    case notADirectory(String)
    /// inotify refused (`reason` is the system's error text, e.g. a watch or instance limit).
    case watchFailed(directory: String, reason: String)
    /// Another watcher of this process is running (libinotifytools keeps one global instance).
    case alreadyWatching(other: String)

    /// What went wrong and what to do about it.
    public var description: String {
        switch self {
        case .directoryMissing(let dir):
            return "spool directory \(dir) does not exist; create the spool (systemd-tmpfiles --create rrmd.conf, "
                + "or mkdir -p tmp incoming work done failed inside it) or point 'spool' in the configuration at it"
        case .notADirectory(let path):
            return
                "\(path) is not a directory; the spool's incoming/ must be a directory (check 'spool' in the "
                    + "configuration)"
        case .watchFailed(let dir, let reason):
            return "cannot watch \(dir) with inotify: \(reason); if the limit is the problem, raise "
                + "fs.inotify.max_user_instances / max_user_watches (sysctl)"
        case .alreadyWatching(let other):
            return
                "a spool watcher of this process already watches \(other); stop it first (libinotifytools has one "
                    + "instance per process)"
        }
    }
}

/// Watches one directory (a spool's `incoming/`) for complete files and reports their names.
///
/// Only `IN_CLOSE_WRITE` (a writer closed the file) and `IN_MOVED_TO` (a file was renamed in)
/// count: both mean the file is complete, whereas `IN_CREATE` would fire on a half-written file.
/// Names starting with `.` or ending in `.tmp` / `.part` are ignored (`SpoolNames.isIgnored`, the
/// rule the spool's scans apply too), so editors' and downloaders' temporary files never start a job. Because inotify
/// can drop events (queue
/// overflow) and cannot see files that arrived before the watch existed, the rescan handler runs
/// once right after the watch is in place, on overflow, when a vanished directory comes back,
/// and every `rescanInterval` seconds; it should list the directory and treat what it finds like
/// reported names.
///
/// The watcher owns a dedicated thread that waits for events in one-second slices and checks a
/// stop flag between them, so `stop()` returns within about a second. Handlers run on that thread
/// and should return quickly (hand the name to a queue). libinotifytools is a process-wide
/// singleton, so only one watcher per process can run at a time.
public final class SpoolWatcher: @unchecked Sendable {
    /// Why the rescan handler is being called.
    public enum RescanReason: String, Sendable {
        /// The watch was just established (files may have arrived while nobody watched).
        case start
        /// The kernel's event queue overflowed, so events were lost.
        case overflow
        /// The periodic safety net (`rescanInterval`).
        case periodic
        /// The directory had vanished and is being watched again.
        case rewatched
    }

    /// The watched directory, as given.
    public let directory: String
    /// Seconds between periodic rescans (0 or less: none).
    public let rescanInterval: TimeInterval

    private let onFile: @Sendable (String) -> Void
    private let onRescan: @Sendable (RescanReason) -> Void
    private let onProblem: @Sendable (String) -> Void

    /// Guards `state` and wakes the thread out of its retry pauses.
    private let condition = NSCondition()
    private var state = State.idle
    private var thread: Thread?
    /// Signalled once by the thread when it has exited.
    private let exited = DispatchSemaphore(value: 0)

    private enum State { case idle, running, stopping, stopped }

    /// How long one wait for events lasts; bounds how long `stop()` takes. libinotifytools takes
    /// whole seconds, and 0 would block forever.
    static let pollSeconds = 1

    /// A watcher of `directory` (not yet started). `onFile` gets each complete file's name (not
    /// its path), `onRescan` the reason for a rescan, `onProblem` a sentence about trouble the
    /// watcher works around (the directory vanished, an unreadable name, an inotify read error).
    public init(
        directory: String, rescanInterval: TimeInterval,
        onFile: @escaping @Sendable (String) -> Void,
        onRescan: @escaping @Sendable (RescanReason) -> Void,
        onProblem: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.directory = directory
        self.rescanInterval = rescanInterval
        self.onFile = onFile
        self.onRescan = onRescan
        self.onProblem = onProblem
    }

    /// Whether the watcher thread is running (started and not yet stopped).
    public var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return state == .running
    }

    /// Checks the directory, starts the thread and returns once the watch is in place (so a file
    /// that arrives after `start` returns is reported). Throws `SpoolWatcherError`. A watcher
    /// starts at most once; make a new one to watch again.
    public func start() throws {
        condition.lock()
        precondition(state == .idle, "SpoolWatcher.start: a watcher starts once; this one is \(state)")
        state = .stopped  // until the thread reports success; a failed start cannot be retried
        condition.unlock()

        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
            throw SpoolWatcherError.directoryMissing(directory)
        }
        guard isDir.boolValue else { throw SpoolWatcherError.notADirectory(directory) }
        try InotifySession.claim(for: directory)

        let attached = DispatchSemaphore(value: 0)
        let attachError = LockedBox<SpoolWatcherError?>(nil)
        let thread = Thread { [self] in
            run(attached: attached, attachError: attachError)
            InotifySession.release()
            exited.signal()
        }
        thread.name = "rrmd.spool-watcher"
        self.thread = thread
        condition.lock()
        state = .running
        condition.unlock()
        thread.start()
        attached.wait()
        if let error = attachError.value {
            exited.wait()
            condition.lock()
            state = .stopped
            condition.unlock()
            throw error
        }
    }

    /// Asks the thread to finish and waits for it (about a second at most, plus whatever a running
    /// handler still needs). Events not yet delivered are dropped: the files stay in the directory
    /// and the next watcher's start-up rescan finds them. Safe to call more than once, and from a
    /// handler (it then returns without waiting, since the thread cannot wait for itself).
    public func stop() {
        condition.lock()
        guard state == .running else {
            let wasStopping = state == .stopping
            condition.unlock()
            if wasStopping && Thread.current !== thread { waitForExit() }
            return
        }
        state = .stopping
        condition.broadcast()
        condition.unlock()
        if Thread.current === thread { return }
        waitForExit()
    }

    private func waitForExit() {
        exited.wait()
        exited.signal()  // let any other waiter through too
        condition.lock()
        state = .stopped
        condition.unlock()
    }

    private var stopRequested: Bool {
        condition.lock()
        defer { condition.unlock() }
        return state != .running
    }

    /// Sleeps up to `seconds`, waking early when `stop()` is called.
    private func pause(_ seconds: TimeInterval) {
        condition.lock()
        if state == .running { _ = condition.wait(until: Date(timeIntervalSinceNow: seconds)) }
        condition.unlock()
    }

    // MARK: - The watcher thread (the only thread that calls libinotifytools)

    private func run(attached: DispatchSemaphore, attachError: LockedBox<SpoolWatcherError?>) {
        var wd: Int32
        switch InotifySession.attach(directory) {
        case .success(let w): wd = w
        case .failure(let error):
            attachError.value = error
            attached.signal()
            return
        }
        attached.signal()
        var watching = true
        onRescan(.start)

        let interval = rescanInterval > 0 ? UInt64(rescanInterval * 1e9) : nil
        var nextRescan = interval.map { monotonicNanoseconds() + $0 }
        while !stopRequested {
            if watching {
                if let event = inotifytools_next_event(SpoolWatcher.pollSeconds) {
                    if !handle(event, wd: wd) {
                        // The watch is gone (directory deleted, moved away or unmounted); the
                        // kernel's IN_IGNORED was the last event of this session.
                        InotifySession.detach(wd: nil)
                        watching = false
                        onProblem(
                            "\(directory) can no longer be watched (deleted, moved or unmounted); "
                                + "retrying every \(SpoolWatcher.pollSeconds) s")
                    }
                } else {
                    let error = inotifytools_error()
                    if error != 0 && error != EINTR {
                        onProblem(
                            "reading inotify events for \(directory) failed: \(String(cString: strerror(error))); "
                                + "re-watching"
                        )
                        InotifySession.detach(wd: nil)
                        watching = false
                    }
                }
            } else {
                switch InotifySession.attach(directory) {
                case .success(let w):
                    wd = w
                    watching = true
                    onRescan(.rewatched)
                case .failure:
                    pause(TimeInterval(SpoolWatcher.pollSeconds))
                }
            }
            if let interval, let due = nextRescan, monotonicNanoseconds() >= due, !stopRequested {
                if watching { onRescan(.periodic) }
                nextRescan = monotonicNanoseconds() + interval
            }
        }
        if watching { InotifySession.detach(wd: wd) }
    }

    /// Reports one event; returns false when the event says the watch no longer exists.
    private func handle(_ event: UnsafeMutablePointer<inotify_event>, wd: Int32) -> Bool {
        let mask = event.pointee.mask
        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
            onRescan(.overflow)
            return true
        }
        if event.pointee.wd == wd && mask & UInt32(IN_IGNORED) != 0 { return false }
        // Directories renamed into incoming/ are not checkpoints; the spool's rescan deals with them.
        if mask & UInt32(IN_ISDIR) != 0 { return true }
        guard mask & UInt32(IN_CLOSE_WRITE | IN_MOVED_TO) != 0, event.pointee.len > 0 else { return true }
        // The name follows the fixed-size header, NUL-padded to `len` bytes.
        let raw = UnsafeRawPointer(event).advanced(by: MemoryLayout<inotify_event>.size)
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        let length = strnlen(raw.assumingMemoryBound(to: CChar.self), Int(event.pointee.len))
        guard let name = String(validating: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self) else {
            onProblem("ignoring a file in \(directory) whose name is not valid UTF-8; rename it")
            return true
        }
        if !SpoolNames.isIgnored(name) { onFile(name) }
        return true
    }
}

/// Monotonic time, immune to wall-clock changes (NTP steps must not trigger or delay rescans).
func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
