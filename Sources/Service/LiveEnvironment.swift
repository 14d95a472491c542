import Dispatch
import Foundation
import Spool

/// The system's wall clock, with timers on a global dispatch queue.
public struct SystemClock: DaemonClock {
    /// The clock.
    public init() {}
    /// `Date()`.
    public var now: Date { Date() }
    /// A wall-clock timer (a suspended machine's sleep counts, as the deadlines are dates).
    public func schedule(at deadline: Date, _ wake: @escaping @Sendable () -> Void) {
        DispatchQueue.global().asyncAfter(wallDeadline: .now() + max(0, deadline.timeIntervalSinceNow), execute: wake)
    }
}

extension SystemdNotifier: ServiceNotifier {}

/// SIGHUP as reload requests, through a dispatch signal source (the signal itself is ignored,
/// so its default action, ending the process, never runs).
public final class ReloadSignalSource: SignalSource, @unchecked Sendable {
    private let lock = NSLock()
    private var source: DispatchSourceSignal?

    /// A source that is not yet delivering.
    public init() {}

    public func start(_ deliver: @escaping @Sendable (DaemonSignal) -> Void) {
        signal(SIGHUP, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        s.setEventHandler { deliver(.reload) }
        s.resume()
        lock.withLock { source = s }
    }

    public func stop() {
        lock.withLock {
            source?.cancel()
            source = nil
        }
    }
}

/// The spool's `incoming/` watched with inotify (`SpoolWatcher`); its problems go to the journal.
final class InotifyIncomingWatcher: IncomingWatcher, @unchecked Sendable {
    private let directory: String, rescanInterval: TimeInterval, log: EventLog
    private var watcher: SpoolWatcher?

    init(directory: String, rescanInterval: TimeInterval, log: EventLog) {
        self.directory = directory
        self.rescanInterval = rescanInterval
        self.log = log
    }

    func start(_ changed: @escaping @Sendable () -> Void) throws {
        let w = SpoolWatcher(
            directory: directory, rescanInterval: rescanInterval,
            onFile: { _ in changed() }, onRescan: { _ in changed() },
            onProblem: { [log] text in log.log(event: "watcher", priority: .warning, message: text) })
        try w.start()
        watcher = w
    }

    func stop() { watcher?.stop() }
}

/// Runs jobs on the thread that calls `serve()`, the process's main thread in `rrmd serve`,
/// while the daemon's loop runs on Swift's concurrency pool: the loop stays free to answer
/// signals, reloads and status while a job runs for hours, and training keeps the thread it has
/// always had (one more thread doing BLAS would cost another OpenBLAS buffer of 128 MiB of
/// address space, which under `ulimit -v` OpenBLAS retries for ever when it cannot get).
public final class MainThreadJobExecutor: JobExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var work: [() -> Void] = []
    private var finished = false

    /// An executor with no jobs yet.
    public init() {}

    public func start(_ job: ClaimedJob, context: JobContext, finished done: @escaping @Sendable (JobOutcome) -> Void) {
        condition.withLock {
            work.append {
                let runner = JobRunner(
                    config: context.config, spool: context.spool, log: context.log, notifier: context.notifier,
                    shouldStop: context.shouldStop, onStatus: context.onStatus)
                switch context.config.executor.kind {
                case .local: done(runner.run(job))
                case .slurm: done(SlurmJobRunner(runner: runner).run(job))
                }
            }
            condition.signal()
        }
    }

    /// Runs jobs as they come until `finish()`; call it on the thread that is to train.
    public func serve() {
        while true {
            let next: (() -> Void)? = condition.withLock {
                while work.isEmpty && !finished { condition.wait() }
                return work.isEmpty ? nil : work.removeFirst()
            }
            guard let next else { return }
            next()
        }
    }

    /// Makes `serve()` return once the jobs handed over so far have run.
    public func finish() {
        condition.withLock {
            finished = true
            condition.signal()
        }
    }
}
