import Foundation
import Kernels
import ModelIO
import Spool

/// Running one job while the loop goes on answering stop, reload and status requests.
extension Daemon {
    /// Runs the pending job at `index` on the executor and files its outcome. Meanwhile the loop
    /// keeps serving: a stop request is announced at once (the job sees it at its next step
    /// boundary), a reload applies to the jobs after this one, and the job's progress goes to
    /// status.json and STATUS=. incoming/ is left alone until the job ends (the job owns the
    /// spool's directories meanwhile) and is scanned right after.
    func runJob(at index: Int) async {
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
}
