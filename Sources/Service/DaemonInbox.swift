import Foundation
import Spool

/// Something the daemon's loop must act on.
enum DaemonEvent: Sendable {
    /// `incoming/` may have changed.
    case incoming
    /// SIGTERM or a graceful shutdown: save state and stop.
    case stop
    /// SIGHUP: re-read the configuration.
    case reload
    /// The running job's progress.
    case jobStatus(SpoolStatus.CurrentJob)
    /// The running job ended.
    case jobFinished(JobOutcome)
    /// A deadline the loop set has passed.
    case timer
}

/// The daemon's one queue of events. Watcher, signal handlers, the job's thread and timers post
/// into it from any thread; the loop takes them one at a time. A stop request is also kept as a
/// flag that the running job reads at its step boundaries.
final class DaemonInbox: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [DaemonEvent] = []
    private var waiter: CheckedContinuation<DaemonEvent, Never>?
    private var idleWaiters: [(whileAJobRuns: Bool, continuation: CheckedContinuation<Void, Never>)] = []
    private var jobRunning = false
    private var stop = false
    private var closed = false
    private var timerGeneration = 0

    /// Whether a stop was requested.
    var stopRequested: Bool { lock.withLock { stop } }

    /// Notes that a job has been handed to the executor; it runs until `.jobFinished` is posted.
    func jobStarted() { lock.withLock { jobRunning = true } }

    /// Adds `event` (and wakes the loop if it waits).
    func post(_ event: DaemonEvent) {
        let resume: CheckedContinuation<DaemonEvent, Never>? = lock.withLock {
            if case .stop = event { stop = true }
            if case .jobFinished = event { jobRunning = false }
            if let w = waiter {
                waiter = nil
                return w
            }
            events.append(event)
            return nil
        }
        resume?.resume(returning: event)
    }

    /// The next event; when none comes before `deadline` (on `clock`), `.timer`.
    func next(until deadline: Date?, clock: any DaemonClock) async -> DaemonEvent {
        let generation: Int? = lock.withLock {
            guard events.isEmpty else { return nil }
            timerGeneration += 1
            return timerGeneration
        }
        guard let generation else { return lock.withLock { events.removeFirst() } }
        if let deadline {
            // A timer posts `.timer` only if the loop is still waiting for this very deadline.
            clock.schedule(at: deadline) { [weak self] in self?.timerFired(generation) }
        }
        return await withCheckedContinuation { continuation in
            let (ready, idle): (DaemonEvent?, [CheckedContinuation<Void, Never>]) = lock.withLock {
                if !events.isEmpty { return (events.removeFirst(), []) }
                waiter = continuation
                let due = idleWaiters.filter { $0.whileAJobRuns || !jobRunning }
                idleWaiters.removeAll { $0.whileAJobRuns || !jobRunning }
                return (nil, due.map(\.continuation))
            }
            if let ready { continuation.resume(returning: ready) }
            for w in idle { w.resume() }
        }
    }

    private func timerFired(_ generation: Int) {
        let resume: CheckedContinuation<DaemonEvent, Never>? = lock.withLock {
            guard generation == timerGeneration else { return nil }  // the loop has moved on
            guard let w = waiter else {
                // Fired before the loop began to wait: it finds the event when it does.
                events.append(.timer)
                return nil
            }
            waiter = nil
            return w
        }
        resume?.resume(returning: .timer)
    }

    /// Marks the loop as ended: `idle()` returns at once from now on.
    func close() {
        let idle: [CheckedContinuation<Void, Never>] = lock.withLock {
            closed = true
            defer { idleWaiters = [] }
            return idleWaiters.map(\.continuation)
        }
        for w in idle { w.resume() }
    }

    /// Returns once the loop waits with nothing left to take and no job running (or, with
    /// `whileAJobRuns`, whether or not one runs), or has ended: what tests await instead of
    /// sleeping.
    func idle(whileAJobRuns: Bool) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now: Bool = lock.withLock {
                if closed || (waiter != nil && events.isEmpty && (whileAJobRuns || !jobRunning)) { return true }
                idleWaiters.append((whileAJobRuns, c))
                return false
            }
            if now { c.resume() }
        }
    }
}
