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
    private var config: ServiceConfig
    private let configPath: String?
    private let spool: Spool
    private let log: EventLog
    private let environment: DaemonEnvironment
    private var clock: any DaemonClock { environment.clock }
    private var notifier: any ServiceNotifier { environment.notifier }
    private let once: Bool
    private let inbox = DaemonInbox()
    private var status: SpoolStatus
    private var lastStatusWrite = Date.distantPast
    /// What was last written to status.json (without `updated`), so an unchanged status is not
    /// flushed to disk every few seconds while idle.
    private var lastWrittenStatus: SpoolStatus?
    private var lastPing = Date.distantPast
    /// Jobs in work/ waiting for their turn, in id (= arrival) order, with the earliest time each
    /// may be retried and its current backoff.
    private var pending: [(job: ClaimedJob, notBefore: Date, backoff: Double)] = []
    /// The job being run, if any (it stays in `pending` until it ends, but is not queued).
    private var running: JobID?
    /// Set in a one-shot run when a job must wait for a retry: the run ends, the job stays in work/.
    private var waitingOnRetry = false
    /// incoming/ entries whose claim failed, with when to try again and the next wait. A failed
    /// claim puts the file back into incoming/, which inotify reports as a new arrival; without a
    /// pause per entry the loop would retry (and log) as fast as it can for as long as the cause
    /// lasts (a full disk, an unreadable file). Keyed by name; size and arrival time tell a file
    /// put back from a new file of the same name, which is tried at once.
    private var claimRetry: [String: (size: UInt64, arrived: Date, notBefore: Date, backoff: Double)] = [:]
    /// Scan problems already logged and when: the same problem is repeated only every
    /// `retry_max_seconds`, not at every scan.
    private var reportedProblems: [String: Date] = [:]
    /// When incoming/ was last scanned.
    private var lastScan = Date.distantPast
    /// incoming/ entries waiting for their turn at the last scan (job ids where the name carries
    /// one): the queue proper, since a job is claimed only when the worker is free.
    private var waitingInIncoming: [String] = []
    /// Whether STOPPING=1 has been sent.
    private var stopAnnounced = false

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

    /// Whether a scan is due without a wake-up: the periodic safety net, or a failed claim whose
    /// pause is over.
    private func scanOverdue() -> Bool {
        let now = clock.now
        if now.timeIntervalSince(lastScan) >= Double(config.service.rescanSeconds) { return true }
        return claimRetry.values.contains { $0.notBefore <= now }
    }

    /// Claims the next teacher waiting in incoming/ (arrival order) when the worker is free, and
    /// refuses what can never be a job (special files, oversized files) wherever it stands. Like
    /// a mail queue's scheduler, it leaves the rest in incoming/: work/ holds only the job being
    /// run and jobs waiting for a retry, so a restart can count against nothing else.
    private func claimIncoming() {
        lastScan = clock.now
        let scan: IncomingScan
        do {
            scan = try spool.scanIncoming()
        } catch {
            reportProblems(["cannot scan \(spool.layout.incoming.path): \(error)"])
            return
        }
        for refused in scan.refused { logRefused(refused) }
        reportProblems(scan.problems.map { "\($0)" })
        // Forget pauses of entries that are gone (claimed by hand, removed).
        let present = Set(scan.entries.map(\.name))
        claimRetry = claimRetry.filter { present.contains($0.key) }
        var workerFree = !pending.contains { $0.notBefore <= clock.now }
        var waiting: [String] = []
        for entry in scan.entries {
            var backoff = Double(config.service.retryInitialSeconds)
            if let retry = claimRetry[entry.name], retry.size == entry.size, retry.arrived == entry.arrived {
                if retry.notBefore > clock.now { continue }
                backoff = retry.backoff
            }
            do {
                claimRetry[entry.name] = nil
                // Too large to be a teacher this daemon accepts: refused before it is read (a claim
                // hashes the whole file, which for a huge file would stall the loop and the watchdog).
                if entry.size > UInt64(config.service.maxTeacherBytes) {
                    let failure = SpoolFailure(
                        kind: "too-large",
                        what: "the file is \(entry.size) bytes, above the limit of \(config.service.maxTeacherBytes)",
                        whereText: entry.originalName,
                        whatToDo: "raise [service] max_teacher_bytes if this teacher is genuine, then resubmit it")
                    if let refused = try spool.refuse(entry, failure: failure) { logRefused(refused) }
                    continue
                }
                guard workerFree else {
                    waiting.append(entry.job?.rawValue ?? entry.name)
                    continue
                }
                guard let job = try spool.claim(entry) else { continue }
                log.log(
                    event: "claimed",
                    message:
                        "job \(job.id): \(job.record.originalName) (\(job.record.size) bytes, sha256 "
                            + "\(job.record.sha256.prefix(12)))",
                    fields: ["job": job.id.rawValue, "sha256": job.record.sha256])
                pending.append((job, Date.distantPast, Double(config.service.retryInitialSeconds)))
                workerFree = false
            } catch SpoolError.refused(let refused) {
                logRefused(refused)
            } catch {
                let wait = min(backoff, Double(config.service.retryMaxSeconds))
                claimRetry[entry.name] = (
                    entry.size, entry.arrived, clock.now.addingTimeInterval(wait),
                    min(wait * 2, Double(config.service.retryMaxSeconds))
                )
                log.log(
                    event: "claim", priority: .warning,
                    message: "cannot claim \(entry.name) yet (next try in \(Int(wait)) s): \(error)")
            }
        }
        waitingInIncoming = waiting
        status.queue = queuedIDs()
    }

    /// Logs a special file moved to failed/ unopened and remembers it among the recent jobs.
    private func logRefused(_ refused: RefusedEntry) {
        log.log(
            event: "refused", priority: .error,
            message: "\(refused.name): \(refused.failure.what); \(refused.failure.whatToDo)",
            fields: ["job": refused.job.rawValue, "kind": refused.failure.kind])
        status.remember(.init(job: refused.job, outcome: .failed, time: clock.now, summary: refused.failure.what))
    }

    /// Logs each problem that is new or was last logged over `retry_max_seconds` ago; problems
    /// that went away are forgotten, so they are logged again if they come back.
    private func reportProblems(_ problems: [String]) {
        let now = clock.now
        let repeatAfter = Double(config.service.retryMaxSeconds)
        var kept: [String: Date] = [:]
        for problem in problems {
            if let last = reportedProblems[problem], now.timeIntervalSince(last) < repeatAfter {
                kept[problem] = last
                continue
            }
            log.log(event: "scan", priority: .warning, message: problem)
            kept[problem] = now
        }
        reportedProblems = kept
    }

    /// The jobs waiting their turn: those in work/ waiting for a retry, then incoming/ in order.
    private func queuedIDs() -> [String] {
        pending.filter { $0.job.id != running }.map { $0.job.id.rawValue } + waitingInIncoming
    }

    /// Runs the pending job at `index` on the executor and files its outcome. Meanwhile the loop
    /// keeps serving: a stop request is announced at once (the job sees it at its next step
    /// boundary), a reload applies to the jobs after this one, and the job's progress goes to
    /// status.json and STATUS=. incoming/ is left alone until the job ends (the job owns the
    /// spool's directories meanwhile) and is scanned right after.
    private func runJob(at index: Int) async {
        let entry = pending[index]
        running = entry.job.id
        status.state = .working
        status.queue = queuedIDs()
        let context = JobContext(
            config: config, spool: spool, log: log, notifier: notifier,
            shouldStop: { [inbox] in inbox.stopRequested },
            onStatus: { [inbox] current in inbox.post(.jobStatus(current)) })
        // Marked before any work, cleared when the run ends with the daemon alive: the next
        // start-up counts a death against this job only (docs/spool.md, "Restarts").
        do { try spool.beginRun(entry.job) } catch {
            log.log(
                event: "claim", priority: .warning,
                message:
                    "job \(entry.job.id): cannot mark it running (\(error)); a crash now would not count against it",
                fields: ["job": entry.job.id.rawValue])
        }
        inbox.jobStarted()
        environment.executor.start(entry.job, context: context) { [inbox] outcome in inbox.post(.jobFinished(outcome)) }
        var finished: JobOutcome?
        while finished == nil {
            if inbox.stopRequested { announceStopping() }
            switch await inbox.next(until: lastStatusWrite.addingTimeInterval(60), clock: clock) {
            case .jobFinished(let outcome):
                finished = outcome
            case .jobStatus(let current):
                // A new phase or student is news worth sending at once; epochs and steps can wait.
                let changed = status.current?.phase != current.phase || status.current?.arch != current.arch
                status.current = current
                publishStatus(force: changed)
            case .reload:
                reload()
            case .stop, .incoming, .timer:
                publishStatus()
            }
        }
        let outcome = finished!
        running = nil
        switch outcome {
        case .stopped, .retryLater:
            // The job stays in work/ and the daemon is alive. Should clearing fail (an I/O
            // error), the worst is one restart counted against it.
            try? spool.endRun(entry.job)
        case .done, .failed, .duplicate, .vanished:
            break  // no work directory is left to hold a marker
        }
        switch outcome {
        case .done, .failed, .duplicate:
            pending.remove(at: index)
            let kind: SpoolStatus.Outcome = outcome == .done ? .done : outcome == .failed ? .failed : .duplicate
            var summary = "\(entry.job.record.originalName): \(kind.rawValue)"
            if kind != .done, let record = try? spool.failure(of: entry.job.id) {
                summary += ": \(record.failure.what)"
            }
            status.remember(.init(job: entry.job.id, outcome: kind, time: clock.now, summary: summary))
        case .vanished:
            pending.remove(at: index)
            status.remember(
                .init(
                    job: entry.job.id, outcome: .failed, time: clock.now,
                    summary: "\(entry.job.record.originalName): removed from work/ by hand; dropped"))
        case .stopped:
            break
        case .retryLater(let reason):
            let wait = min(entry.backoff, Double(config.service.retryMaxSeconds))
            pending[index].notBefore = clock.now.addingTimeInterval(wait)
            pending[index].backoff = min(wait * 2, Double(config.service.retryMaxSeconds))
            log.log(
                event: "retry", priority: .warning,
                message: "job \(entry.job.id) will be retried in \(Int(wait)) s: \(reason)",
                fields: ["job": entry.job.id.rawValue])
            // A one-shot run reports the problem and ends instead of waiting for the retry.
            if once { waitingOnRetry = true }
        }
        status.current = nil
        status.queue = queuedIDs()
        if !stopAnnounced { status.state = .idle }
        publishStatus(force: true)
    }

    /// SIGHUP: re-reads the configuration; an invalid one is rejected and the old one kept.
    private func reload() {
        guard let configPath else {
            log.log(
                event: "reload", priority: .notice,
                message: "SIGHUP ignored: running on the built-in defaults, not a configuration file")
            return
        }
        _ = notifier.reloading(status: "reloading \(configPath)")
        do {
            let fresh = try ServiceConfig.load(path: configPath)
            if fresh.spool != config.spool {
                log.log(
                    event: "reload", priority: .warning,
                    message:
                        "the new configuration moves the spool to \(fresh.spool); that takes a restart, so the spool "
                            + "stays \(config.spool)"
                )
            }
            if fresh.service.rescanSeconds != config.service.rescanSeconds {
                log.log(
                    event: "reload", priority: .warning,
                    message:
                        "service.rescan_seconds = \(fresh.service.rescanSeconds) takes effect for the watcher only "
                            + "after a restart; it rescans every \(config.service.rescanSeconds) s until then"
                )
            }
            var kept = fresh
            kept.spool = config.spool
            config = kept
            Compute.configure(threads: config.threads)
            log.log(event: "reload", message: "configuration re-read from \(configPath)")
        } catch {
            log.log(
                event: "reload", priority: .error, message: "new configuration rejected, keeping the old one: \(error)")
        }
        _ = notifier.ready(status: statusText())
    }

    /// Tells systemd and status.json that rrmd is stopping (once).
    private func announceStopping() {
        guard !stopAnnounced else { return }
        stopAnnounced = true
        status.state = .stopping
        publishStatus(force: true)
        _ = notifier.stopping(status: statusText())
    }

    /// The STATUS= line: state, current job, phase, epoch, queue.
    private func statusText() -> String {
        var text = "\(status.state.rawValue)"
        if let c = status.current {
            text += ": job \(c.id) \(c.arch ?? "") \(c.phase.rawValue)"
            if let e = c.epoch, let n = c.epochs { text += " epoch \(e)/\(n)" }
            if let a = c.accuracy, a.isFinite { text += String(format: " accuracy %.3f", a) }
        }
        text += "; \(status.queue.count) queued"
        return text
    }

    /// Writes status.json and STATUS= (at most every 2 s unless forced; an unchanged status only
    /// once a minute, to keep `updated` fresh without flushing the disk every few seconds).
    private func publishStatus(force: Bool = false) {
        let age = clock.now.timeIntervalSince(lastStatusWrite)
        guard force || age >= (status == lastWrittenStatus ? 60 : 2) else { return }
        lastStatusWrite = clock.now
        lastWrittenStatus = status
        try? spool.writeStatus(status)
        _ = notifier.status(statusText())
    }

    /// Feeds the watchdog while idle: the loop itself is the progress.
    private func pingWatchdog() {
        guard let interval = notifier.watchdogPingInterval, clock.now.timeIntervalSince(lastPing) >= interval else {
            return
        }
        lastPing = clock.now
        _ = notifier.watchdog()
    }
}
