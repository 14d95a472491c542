import Foundation
import Kernels
import ModelIO
import Spool

/// Claiming from `incoming/`: what to take, when to try a failed claim again, what to report.
extension Daemon {
    /// Whether a scan is due without a wake-up: the periodic safety net, or a failed claim whose
    /// pause is over.
    func scanOverdue() -> Bool {
        let now = clock.now
        if now.timeIntervalSince(lastScan) >= Double(config.service.rescanSeconds) { return true }
        return claimRetry.values.contains { $0.notBefore <= now }
    }

    /// Claims the next teacher waiting in incoming/ (arrival order) when the worker is free, and
    /// refuses what can never be a job (special files, oversized files) wherever it stands. Like
    /// a mail queue's scheduler, it leaves the rest in incoming/: work/ holds only the job being
    /// run and jobs waiting for a retry, so a restart can count against nothing else.
    func claimIncoming() {
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
    func logRefused(_ refused: RefusedEntry) {
        log.log(
            event: "refused", priority: .error,
            message: "\(refused.name): \(refused.failure.what); \(refused.failure.whatToDo)",
            fields: ["job": refused.job.rawValue, "kind": refused.failure.kind])
        status.remember(.init(job: refused.job, outcome: .failed, time: clock.now, summary: refused.failure.what))
    }

    /// Logs each problem that is new or was last logged over `retry_max_seconds` ago; problems
    /// that went away are forgotten, so they are logged again if they come back.
    func reportProblems(_ problems: [String]) {
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
    func queuedIDs() -> [String] {
        pending.filter { $0.job.id != running }.map { $0.job.id.rawValue } + waitingInIncoming
    }
}
