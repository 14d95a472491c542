import Foundation
import Spool

@testable import Service

/// A clock that moves only when a test says so; timers fire as it passes their deadlines.
final class ManualClock: DaemonClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current = Date(timeIntervalSince1970: 1_800_000_000)
    private var timers: [(deadline: Date, wake: @Sendable () -> Void)] = []

    var now: Date { lock.withLock { current } }

    func schedule(at deadline: Date, _ wake: @escaping @Sendable () -> Void) {
        let due: Bool = lock.withLock {
            if deadline <= current { return true }
            timers.append((deadline, wake))
            return false
        }
        if due { wake() }
    }

    /// Moves the time on by `seconds` and fires every timer that is then due.
    func advance(by seconds: TimeInterval) {
        let due: [@Sendable () -> Void] = lock.withLock {
            current = current.addingTimeInterval(seconds)
            let fired = timers.filter { $0.deadline <= current }
            timers.removeAll { $0.deadline <= current }
            return fired.map(\.wake)
        }
        for wake in due { wake() }
    }
}

/// Records what the daemon tells its supervisor, as `sd_notify` assignments.
final class RecordingNotifier: ServiceNotifier, @unchecked Sendable {
    private let lock = NSLock()
    private var sent: [String] = []
    /// Every message so far, e.g. "READY=1", "STATUS=idle; 0 queued".
    var messages: [String] { lock.withLock { sent } }
    private func record(_ m: String) -> Bool {
        lock.withLock { sent.append(m) }
        return true
    }

    func ready(status: String?) -> Bool { record("READY=1") }
    func status(_ text: String) -> Bool { record("STATUS=\(text)") }
    func watchdog() -> Bool { record("WATCHDOG=1") }
    func reloading(status: String?) -> Bool { record("RELOADING=1") }
    func stopping(status: String?) -> Bool { record("STOPPING=1") }
    var watchdogPingInterval: TimeInterval? { nil }
}

/// Signals a test sends by hand.
final class ManualSignals: SignalSource, @unchecked Sendable {
    private let lock = NSLock()
    private var deliver: (@Sendable (DaemonSignal) -> Void)?
    func start(_ deliver: @escaping @Sendable (DaemonSignal) -> Void) { lock.withLock { self.deliver = deliver } }
    func stop() { lock.withLock { deliver = nil } }
    func send(_ signal: DaemonSignal) { lock.withLock { deliver }?(signal) }
}

/// A watcher that reports a change when a test says so.
final class ManualWatcher: IncomingWatcher, @unchecked Sendable {
    private let lock = NSLock()
    private var changed: (@Sendable () -> Void)?
    func start(_ changed: @escaping @Sendable () -> Void) throws { lock.withLock { self.changed = changed } }
    func stop() { lock.withLock { changed = nil } }
    func report() { lock.withLock { changed }?() }
}

/// Runs jobs with a test's closure on a thread of its own, and remembers which it ran.
final class ScriptedExecutor: JobExecutor, @unchecked Sendable {
    private let lock = NSLock()
    private var ran: [String] = []
    private let body: @Sendable (ClaimedJob, JobContext, Int) -> JobOutcome

    /// `body(job, context, attempt)` decides each run's outcome (attempt counts from 1 per job).
    init(_ body: @escaping @Sendable (ClaimedJob, JobContext, Int) -> JobOutcome) { self.body = body }

    /// Original names of the teachers of the jobs run, in order (a retried job appears again).
    var runs: [String] { lock.withLock { ran } }

    func start(_ job: ClaimedJob, context: JobContext, finished: @escaping @Sendable (JobOutcome) -> Void) {
        let attempt: Int = lock.withLock {
            ran.append(job.record.originalName)
            return ran.filter { $0 == job.record.originalName }.count
        }
        Thread { finished(self.body(job, context, attempt)) }.start()
    }

    /// An executor whose every job is published at once (`publish`).
    static func publishing() -> ScriptedExecutor {
        ScriptedExecutor { job, context, _ in publish(job, context) }
    }

    /// An outcome body that publishes the job as a runner would (an empty report).
    static func publish(_ job: ClaimedJob, _ context: JobContext) -> JobOutcome {
        do {
            let out = context.spool.layout.work.appendingPathComponent("\(job.id.rawValue)/out")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: out.appendingPathComponent("report.json"))
            try context.spool.publish(job)
            return .done
        } catch {
            return .retryLater("\(error)")
        }
    }
}
