import Foundation
import Kernels
import ModelIO
import Spool

/// Reloads, STOPPING=1, status.json and STATUS=, the watchdog.
extension Daemon {
    /// SIGHUP: re-reads the configuration; an invalid one is rejected and the old one kept.
    func reload() {
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
    func announceStopping() {
        guard !stopAnnounced else { return }
        stopAnnounced = true
        status.state = .stopping
        publishStatus(force: true)
        _ = notifier.stopping(status: statusText())
    }

    /// The STATUS= line: state, current job, phase, epoch, queue.
    func statusText() -> String {
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
    func publishStatus(force: Bool = false) {
        let age = clock.now.timeIntervalSince(lastStatusWrite)
        guard force || age >= (status == lastWrittenStatus ? 60 : 2) else { return }
        lastStatusWrite = clock.now
        lastWrittenStatus = status
        try? spool.writeStatus(status)
        _ = notifier.status(statusText())
    }

    /// Feeds the watchdog while idle: the loop itself is the progress.
    func pingWatchdog() {
        guard let interval = notifier.watchdogPingInterval, clock.now.timeIntervalSince(lastPing) >= interval else {
            return
        }
        lastPing = clock.now
        _ = notifier.watchdog()
    }
}
