import Foundation
import Spool

/// What the daemon reads the time from and sets its timers on. The live clock is the system's;
/// tests drive a manual one, so that backoffs and rescans happen without waiting.
public protocol DaemonClock: Sendable {
    /// The current time.
    var now: Date { get }
    /// Calls `wake` once, on any thread, when `deadline` has passed.
    func schedule(at deadline: Date, _ wake: @escaping @Sendable () -> Void)
}

/// What the daemon tells its supervisor (systemd's `sd_notify` protocol, or a test's recorder).
public protocol ServiceNotifier: Sendable {
    /// READY=1, with a status line.
    @discardableResult func ready(status: String?) -> Bool
    /// STATUS=...
    @discardableResult func status(_ text: String) -> Bool
    /// WATCHDOG=1.
    @discardableResult func watchdog() -> Bool
    /// RELOADING=1, with a status line.
    @discardableResult func reloading(status: String?) -> Bool
    /// STOPPING=1, with a status line.
    @discardableResult func stopping(status: String?) -> Bool
    /// How often to send WATCHDOG=1, or nil when no watchdog is set.
    var watchdogPingInterval: TimeInterval? { get }
}

/// A request from outside the process.
public enum DaemonSignal: Sendable, Equatable {
    /// Save state and stop (SIGTERM, SIGINT; under a ServiceGroup, its graceful shutdown).
    case stop
    /// Re-read the configuration (SIGHUP).
    case reload
}

/// Where the daemon's stop and reload requests come from.
public protocol SignalSource: Sendable {
    /// Starts delivering requests to `deliver` (on any thread).
    func start(_ deliver: @escaping @Sendable (DaemonSignal) -> Void)
    /// Stops delivering.
    func stop()
}

/// Tells the daemon that `incoming/` may have changed (an arrival, or a rescan the watcher
/// asks for).
public protocol IncomingWatcher: Sendable {
    /// Starts watching; `changed` is called on any thread.
    func start(_ changed: @escaping @Sendable () -> Void) throws
    /// Stops watching.
    func stop()
}

/// What a job sends the daemon while it runs.
public struct JobContext: Sendable {
    /// The configuration the job runs under (fixed for the job, even if reloaded meanwhile).
    public var config: ServiceConfig
    /// The spool the job belongs to.
    public var spool: Spool
    /// The journal.
    public var log: EventLog
    /// For WATCHDOG=1 as the job makes progress.
    public var notifier: any ServiceNotifier
    /// Asked at step boundaries: true when the job should save its state and end.
    public var shouldStop: @Sendable () -> Bool
    /// The job's phase, student, epoch and progress, as it changes.
    public var onStatus: @Sendable (SpoolStatus.CurrentJob) -> Void
}

/// Runs one claimed job away from the daemon's loop and reports its outcome.
public protocol JobExecutor: Sendable {
    /// Starts `job` and returns at once; `finished` is called (on any thread) with the outcome.
    func start(_ job: ClaimedJob, context: JobContext, finished: @escaping @Sendable (JobOutcome) -> Void)
}

/// Everything the daemon needs from the world besides its spool and configuration.
public struct DaemonEnvironment: Sendable {
    /// The time and timers.
    public var clock: any DaemonClock
    /// The supervisor.
    public var notifier: any ServiceNotifier
    /// Stop and reload requests.
    public var signals: any SignalSource
    /// Makes the watcher of a spool's `incoming/`, given the directory and the rescan interval.
    public var watcher:
        @Sendable (_ directory: String, _ rescanInterval: TimeInterval, _ log: EventLog) -> any IncomingWatcher
    /// Runs jobs.
    public var executor: any JobExecutor

    /// An environment from its parts.
    public init(
        clock: any DaemonClock, notifier: any ServiceNotifier, signals: any SignalSource,
        watcher: @escaping @Sendable (String, TimeInterval, EventLog) -> any IncomingWatcher, executor: any JobExecutor
    ) {
        self.clock = clock
        self.notifier = notifier
        self.signals = signals
        self.watcher = watcher
        self.executor = executor
    }

    /// The real thing: the system clock, systemd's notification socket, SIGHUP (stop requests
    /// come from the ServiceGroup's graceful shutdown), inotify, and `executor` for the jobs.
    public static func live(executor: any JobExecutor) -> DaemonEnvironment {
        DaemonEnvironment(
            clock: SystemClock(), notifier: SystemdNotifier(), signals: ReloadSignalSource(),
            watcher: { directory, interval, log in
                InotifyIncomingWatcher(directory: directory, rescanInterval: interval, log: log)
            },
            executor: executor)
    }
}
