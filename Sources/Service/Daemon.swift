import Foundation
import Kernels
import ModelIO
import ServiceLifecycle
import Spool

/// The service: owns the spool, watches `incoming/`, runs jobs one at a time in arrival order,
/// and keeps systemd and the journal informed.
///
/// A `Service` in swift-service-lifecycle's sense: `run()` is async, and a `ServiceGroup`'s
/// graceful shutdown (SIGTERM) is a stop request. Everything it meets in the world is injected
/// (`DaemonEnvironment`: clock, notifier, signal source, watcher, job executor), so tests drive
/// it in process with fakes. One loop owns all of the daemon's state; the watcher, signals, the
/// job's thread and timers only post events into its inbox. The job runs on a thread of its
/// own, so the loop answers stop and reload requests and keeps the status fresh meanwhile.
public final class Daemon: Service, @unchecked Sendable {
    var config: ServiceConfig
    let configPath: String?
    let spool: Spool
    let log: EventLog
    let environment: DaemonEnvironment
    var clock: any DaemonClock { environment.clock }
    var notifier: any ServiceNotifier { environment.notifier }
    let once: Bool
    let inbox = DaemonInbox()
    var status: SpoolStatus
    var lastStatusWrite = Date.distantPast
    /// What was last written to status.json (without `updated`), so an unchanged status is not
    /// flushed to disk every few seconds while idle.
    var lastWrittenStatus: SpoolStatus?
    var lastPing = Date.distantPast
    /// Jobs in work/ waiting for their turn, in id (= arrival) order, with the earliest time each
    /// may be retried and its current backoff.
    var pending: [(job: ClaimedJob, notBefore: Date, backoff: Double)] = []
    /// The job being run, if any (it stays in `pending` until it ends, but is not queued).
    var running: JobID?
    /// Set in a one-shot run when a job must wait for a retry: the run ends, the job stays in work/.
    var waitingOnRetry = false
    /// incoming/ entries whose claim failed, with when to try again and the next wait. A failed
    /// claim puts the file back into incoming/, which inotify reports as a new arrival; without a
    /// pause per entry the loop would retry (and log) as fast as it can for as long as the cause
    /// lasts (a full disk, an unreadable file). Keyed by name; size and arrival time tell a file
    /// put back from a new file of the same name, which is tried at once.
    var claimRetry: [String: (size: UInt64, arrived: Date, notBefore: Date, backoff: Double)] = [:]
    /// Scan problems already logged and when: the same problem is repeated only every
    /// `retry_max_seconds`, not at every scan.
    var reportedProblems: [String: Date] = [:]
    /// When incoming/ was last scanned.
    var lastScan = Date.distantPast
    /// incoming/ entries waiting for their turn at the last scan (job ids where the name carries
    /// one): the queue proper, since a job is claimed only when the worker is free.
    var waitingInIncoming: [String] = []
    /// Whether STOPPING=1 has been sent.
    var stopAnnounced = false

    /// Scans of incoming/ are at least this far apart, however many wake-ups arrive.
    static let minimumScanInterval: TimeInterval = 1

    /// Attempts of one job (1 at claim, plus one for each time a daemon died while running it:
    /// the spool's run marker) after which it is failed as the likely cause of the restarts.
    static let maxAttempts = 10

    /// A daemon for `config` (read from `configPath`, re-read on SIGHUP when given) in `environment`.
    public init(
        config: ServiceConfig, configPath: String?, once: Bool, log: EventLog = EventLog(),
        environment: DaemonEnvironment
    ) {
        self.config = config
        self.configPath = configPath
        self.once = once
        self.log = log
        self.environment = environment
        spool = Spool(root: URL(fileURLWithPath: config.spool, isDirectory: true))
        status = SpoolStatus(state: .idle, pid: getpid())
    }

    /// Asks the daemon to save its state and stop, as SIGTERM does (any thread).
    public func requestStop() { inbox.post(.stop) }

    /// Returns once the daemon waits for something to happen with nothing left to do and no job
    /// running (with `whileAJobRuns`, only waits, a job may be running), or has ended: tests
    /// await this instead of sleeping.
    public func idle(whileAJobRuns: Bool = false) async { await inbox.idle(whileAJobRuns: whileAJobRuns) }

    /// Runs until a stop request (or, with `once`, until the queue is empty). Throws only for
    /// start-up problems (spool unusable, another daemon on it).
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await serve()
        } onGracefulShutdown: { [inbox] in
            inbox.post(.stop)
        }
    }

    private func serve() async throws {
        defer { inbox.close() }
        environment.signals.start { [inbox] signal in inbox.post(signal == .stop ? .stop : .reload) }
        defer { environment.signals.stop() }
        Compute.configure(threads: config.threads)
        try spool.layout.create()
        let lock = try spool.lock()
        defer { lock.release() }
        let recovery: SpoolRecovery
        do {
            recovery = try spool.recover(shouldStop: { [inbox] in inbox.stopRequested })
        } catch SpoolError.stopped {
            // A stop during start-up: no READY=1, a STOPPING=1, a clean exit; the job recovery
            // was finishing stays in work/ exactly as a crash would have left it.
            announceStopping()
            log.log(event: "stopping", message: "stop requested during recovery; the next start finishes it")
            return
        }
        for note in recovery.notes { log.log(event: "recovery", message: note) }
        for problem in recovery.problems { log.log(event: "recovery", priority: .warning, message: "\(problem)") }
        var resumable: [ClaimedJob] = []
        for job in recovery.resumable {
            // A job the daemon has started this many times without finishing is most likely what
            // keeps killing it (out of memory, a crash); failing it breaks the restart loop before
            // systemd's start limit takes the whole service down.
            if job.record.attempts > Self.maxAttempts {
                let failure = SpoolFailure(
                    kind: "crashed",
                    what:
                        "rrmd stopped without finishing this job \(job.record.attempts - 1) times while running it "
                        + "(killed, crashed or out of memory)",
                    whereText: job.record.originalName,
                    whatToDo:
                        "look for crashes or out-of-memory kills in `journalctl -u rrmd RRMD_JOB=\(job.id)`; resubmit "
                        + "once the cause is fixed"
                )
                do {
                    try spool.fail(job, error: failure)
                    log.log(
                        event: "failed", priority: .error, message: "job \(job.id): \(failure.what)",
                        fields: ["job": job.id.rawValue, "kind": failure.kind])
                } catch {
                    log.log(event: "recovery", priority: .warning, message: "cannot fail job \(job.id): \(error)")
                    resumable.append(job)
                }
                continue
            }
            resumable.append(job)
        }
        pending = resumable.map { ($0, Date.distantPast, Double(config.service.retryInitialSeconds)) }
        if !pending.isEmpty {
            log.log(
                event: "recovery",
                message: "resuming \(pending.count) job(s): \(pending.map(\.job.id.rawValue).joined(separator: ", "))")
        }
        status.queue = queuedIDs()

        let watcher = environment.watcher(spool.layout.incoming.path, TimeInterval(config.service.rescanSeconds), log)
        try watcher.start { [inbox] in inbox.post(.incoming) }
        defer { watcher.stop() }
        // A stop requested during start-up (recovery can take a while) ends the run without
        // ever claiming readiness; the loop below is skipped and STOPPING=1 follows.
        if !inbox.stopRequested {
            notifier.ready(status: "ready; spool \(config.spool)")
            log.log(
                event: "ready",
                message:
                    "rrmd \(RRMDVersion.string) serving \(config.spool) with \(Compute.threads) threads; students "
                    + "\(config.students.architectures.joined(separator: ", "))",
                fields: ["spool": config.spool])
            if config.executor.kind == .slurm { SlurmJobRunner.checkCluster(config, log: log) }
        }
        publishStatus(force: true)

        // incoming/ is scanned when the watcher reports something (an arrival or its own rescan),
        // after each job, when a failed claim is due again, and every rescan_seconds in case the
        // watcher is not watching; never more often than once a second.
        var scanDue = true
        while !inbox.stopRequested {
            if scanDue || scanOverdue(), clock.now.timeIntervalSince(lastScan) >= Self.minimumScanInterval {
                scanDue = false
                claimIncoming()
            }
            if let index = pending.firstIndex(where: { $0.notBefore <= clock.now }) {
                await runJob(at: index)
                scanDue = true  // teachers may have arrived meanwhile
                continue
            }
            if once && !scanDue && (pending.isEmpty || waitingOnRetry) { break }
            status.state = .idle
            status.current = nil
            publishStatus()
            pingWatchdog()
            switch await inbox.next(until: nextDeadline(scanDue: scanDue), clock: clock) {
            case .incoming: scanDue = true  // one scan answers every wake-up that has piled up
            case .reload: reload()
            case .stop, .timer, .jobStatus, .jobFinished: break
            }
        }
        announceStopping()
        let waiting = pending.count
        let reason: String
        if inbox.stopRequested {
            reason = "stop requested; state saved"
        } else if waiting > 0 {
            reason =
                "--once: \(waiting) job(s) left in work/ waiting for a retry "
                + "(\(pending.map(\.job.id.rawValue).joined(separator: ", "))); the next start resumes them"
        } else {
            reason = "queue empty (--once)"
        }
        log.log(event: "stopping", message: reason)
    }

    /// The earliest moment the idle loop has something to do without an event: a job's retry, a
    /// failed claim's retry, the periodic rescan, a due scan held back by the minimum interval,
    /// a status refresh, a watchdog ping.
    private func nextDeadline(scanDue: Bool) -> Date {
        var deadline = lastScan.addingTimeInterval(Double(config.service.rescanSeconds))
        if scanDue { deadline = min(deadline, lastScan.addingTimeInterval(Self.minimumScanInterval)) }
        for retry in claimRetry.values { deadline = min(deadline, retry.notBefore) }
        for job in pending { deadline = min(deadline, job.notBefore) }
        deadline = min(deadline, lastStatusWrite.addingTimeInterval(status == lastWrittenStatus ? 60 : 2))
        if let interval = notifier.watchdogPingInterval {
            deadline = min(deadline, lastPing.addingTimeInterval(interval))
        }
        return deadline
    }

}
