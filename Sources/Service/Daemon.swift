import Foundation
import Kernels
import Spool

/// The service: owns the spool, watches `incoming/`, runs jobs one at a time in arrival order,
/// and keeps systemd and the journal informed. Single-threaded apart from the watcher thread,
/// whose only job is to wake this loop.
public final class Daemon {
    private var config: ServiceConfig
    private let configPath: String?
    private let spool: Spool
    private let log: EventLog
    private let notifier = SystemdNotifier()
    private let once: Bool
    private let wake = DispatchSemaphore(value: 0)
    private var status: SpoolStatus
    private var lastStatusWrite = Date.distantPast
    private var lastPing = Date.distantPast
    /// Jobs in work/ waiting for their turn, in id (= arrival) order, with the earliest time each
    /// may be retried and its current backoff.
    private var pending: [(job: ClaimedJob, notBefore: Date, backoff: Double)] = []
    /// Set in a one-shot run when a job must wait for a retry: the run ends, the job stays in work/.
    private var waitingOnRetry = false

    /// A daemon for `config` (read from `configPath`, re-read on SIGHUP when given).
    public init(config: ServiceConfig, configPath: String?, once: Bool, log: EventLog = EventLog()) {
        self.config = config; self.configPath = configPath; self.once = once; self.log = log
        spool = Spool(root: URL(fileURLWithPath: config.spool, isDirectory: true))
        status = SpoolStatus(state: .idle, pid: getpid())
    }

    /// Runs until SIGTERM/SIGINT (or, with `once`, until the queue is empty). Throws only for
    /// start-up problems (spool unusable, another daemon on it).
    public func run() throws {
        ProcessSignals.installStopHandlers()
        ProcessSignals.installReloadHandler()
        Compute.configure(threads: config.threads)
        try spool.layout.create()
        let lock = try spool.lock()
        defer { lock.release() }
        let recovery = try spool.recover()
        for note in recovery.notes { log.log(event: "recovery", message: note) }
        for problem in recovery.problems { log.log(event: "recovery", priority: .warning, message: "\(problem)") }
        pending = recovery.resumable.map { ($0, Date.distantPast, Double(config.service.retryInitialSeconds)) }
        if !pending.isEmpty { log.log(event: "recovery", message: "resuming \(pending.count) job(s): \(pending.map(\.job.id.rawValue).joined(separator: ", "))") }

        let watcher = SpoolWatcher(directory: spool.layout.incoming.path, rescanInterval: TimeInterval(config.service.rescanSeconds),
                                   onFile: { [wake] _ in wake.signal() }, onRescan: { [wake] _ in wake.signal() },
                                   onProblem: { [log] text in log.log(event: "watcher", priority: .warning, message: text) })
        try watcher.start()
        defer { watcher.stop() }
        _ = notifier.ready(status: "ready; spool \(config.spool)")
        log.log(event: "ready", message: "rrmd \(RRMDService.version) serving \(config.spool) with \(Compute.threads) threads; students \(config.students.architectures.joined(separator: ", "))",
                fields: ["spool": config.spool])
        publishStatus(force: true)

        while !ProcessSignals.stopRequested {
            if ProcessSignals.takeReloadRequest() { reload() }
            claimIncoming()
            if let index = pending.firstIndex(where: { $0.notBefore <= Date() }) {
                runJob(at: index)
                continue
            }
            if once && (pending.isEmpty || waitingOnRetry) { break }
            status.state = .idle; status.current = nil
            publishStatus()
            pingWatchdog()
            _ = wake.wait(timeout: .now() + 1)
        }
        status.state = .stopping
        publishStatus(force: true)
        _ = notifier.stopping(status: "stopping")
        log.log(event: "stopping", message: ProcessSignals.stopRequested ? "stop requested; state saved" : "queue empty (--once)")
    }

    /// Claims everything waiting in incoming/, in arrival order, onto the end of the queue.
    private func claimIncoming() {
        do {
            let scan = try spool.scanIncoming()
            for refused in scan.refused {
                log.log(event: "refused", priority: .error, message: "\(refused.name): \(refused.failure.what); \(refused.failure.whatToDo)",
                        fields: ["job": refused.job.rawValue, "kind": refused.failure.kind])
                status.remember(.init(job: refused.job, outcome: .failed, time: Date(), summary: refused.failure.what))
            }
            for problem in scan.problems { log.log(event: "scan", priority: .warning, message: "\(problem)") }
            for entry in scan.entries {
                do {
                    guard let job = try spool.claim(entry) else { continue }
                    log.log(event: "claimed", message: "job \(job.id): \(job.record.originalName) (\(job.record.size) bytes, sha256 \(job.record.sha256.prefix(12)))",
                            fields: ["job": job.id.rawValue, "sha256": job.record.sha256])
                    pending.append((job, Date.distantPast, Double(config.service.retryInitialSeconds)))
                } catch SpoolError.refused(let refused) {
                    log.log(event: "refused", priority: .error, message: "\(refused.name): \(refused.failure.what); \(refused.failure.whatToDo)",
                            fields: ["job": refused.job.rawValue, "kind": refused.failure.kind])
                } catch {
                    log.log(event: "claim", priority: .warning, message: "cannot claim \(entry.name) yet: \(error)")
                }
            }
            status.queue = pending.map { $0.job.id.rawValue }
        } catch {
            log.log(event: "scan", priority: .warning, message: "cannot scan \(spool.layout.incoming.path): \(error)")
        }
    }

    /// Runs the pending job at `index` and files its outcome.
    private func runJob(at index: Int) {
        let entry = pending[index]
        status.state = .working
        let runner = JobRunner(config: config, spool: spool, log: log, notifier: notifier,
                               shouldStop: { ProcessSignals.stopRequested }) { [weak self] current in
            guard let self else { return }
            // A new phase or student is news worth sending at once; epochs and steps can wait.
            let changed = self.status.current?.phase != current.phase || self.status.current?.arch != current.arch
            self.status.current = current
            self.publishStatus(force: changed)
        }
        let outcome = runner.run(entry.job)
        switch outcome {
        case .done, .failed, .duplicate:
            pending.remove(at: index)
            let kind: SpoolStatus.Outcome = outcome == .done ? .done : outcome == .failed ? .failed : .duplicate
            var summary = "\(entry.job.record.originalName): \(kind.rawValue)"
            if kind != .done, let record = try? spool.failure(of: entry.job.id) { summary += ": \(record.failure.what)" }
            status.remember(.init(job: entry.job.id, outcome: kind, time: Date(), summary: summary))
        case .stopped:
            break
        case .retryLater(let reason):
            let wait = min(entry.backoff, Double(config.service.retryMaxSeconds))
            pending[index].notBefore = Date().addingTimeInterval(wait)
            pending[index].backoff = min(wait * 2, Double(config.service.retryMaxSeconds))
            log.log(event: "retry", priority: .warning, message: "job \(entry.job.id) will be retried in \(Int(wait)) s: \(reason)",
                    fields: ["job": entry.job.id.rawValue])
            // A one-shot run reports the problem and ends instead of waiting for the retry.
            if once { waitingOnRetry = true }
        }
        status.current = nil
        status.queue = pending.map { $0.job.id.rawValue }
        publishStatus(force: true)
    }

    /// SIGHUP: re-reads the configuration; an invalid one is rejected and the old one kept.
    private func reload() {
        guard let configPath else {
            log.log(event: "reload", priority: .notice, message: "SIGHUP ignored: running on the built-in defaults, not a configuration file")
            return
        }
        _ = notifier.reloading(status: "reloading \(configPath)")
        do {
            let fresh = try ServiceConfig.load(path: configPath)
            if fresh.spool != config.spool {
                log.log(event: "reload", priority: .warning, message: "the new configuration moves the spool to \(fresh.spool); that takes a restart, so the spool stays \(config.spool)")
            }
            var kept = fresh
            kept.spool = config.spool
            config = kept
            Compute.configure(threads: config.threads)
            log.log(event: "reload", message: "configuration re-read from \(configPath)")
        } catch {
            log.log(event: "reload", priority: .error, message: "new configuration rejected, keeping the old one: \(error)")
        }
        _ = notifier.ready(status: "ready")
    }

    /// Writes status.json and STATUS= (at most every 2 s unless forced).
    private func publishStatus(force: Bool = false) {
        guard force || Date().timeIntervalSince(lastStatusWrite) >= 2 else { return }
        lastStatusWrite = Date()
        try? spool.writeStatus(status)
        var text = "\(status.state.rawValue)"
        if let c = status.current {
            text += ": job \(c.id) \(c.arch ?? "") \(c.phase.rawValue)"
            if let e = c.epoch, let n = c.epochs { text += " epoch \(e)/\(n)" }
            if let a = c.accuracy { text += String(format: " accuracy %.3f", a) }
        }
        text += "; \(pending.count) queued"
        _ = notifier.status(text)
    }

    /// Feeds the watchdog while idle: the loop itself is the progress.
    private func pingWatchdog() {
        guard let interval = notifier.watchdogPingInterval, Date().timeIntervalSince(lastPing) >= interval else { return }
        lastPing = Date()
        _ = notifier.watchdog()
    }
}
