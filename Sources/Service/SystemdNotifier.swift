import CSystemd
import Foundation

/// The systemd notification protocol (`sd_notify`) as rrmd uses it with `Type=notify`.
///
/// Every call is a no-op returning false when `NOTIFY_SOCKET` is unset, i.e. when rrmd runs from a
/// shell, so callers never need to know how they were started. Failures to deliver are reported
/// by the return value only: a lost status line must never stop a job. The environment is read
/// at each call (nothing is cached), and `NOTIFY_SOCKET` is left in place so that every later
/// notification still reaches systemd.
public struct SystemdNotifier: Sendable {
    /// A notifier for this process.
    public init() {}

    /// Whether systemd asked for notifications (`NOTIFY_SOCKET` is set).
    public var isActive: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// `READY=1`: start-up (spool recovery) is over; systemd now reports the unit as active.
    /// Also ends a reload started with `reloading()`. `status` is sent in the same datagram.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        send(["READY=1"] + statusLine(status))
    }

    /// `STATUS=`: one line shown by `systemctl status rrmd` (current job, phase, epoch).
    /// Line breaks become spaces, since the protocol is one assignment per line.
    @discardableResult
    public func status(_ text: String) -> Bool {
        send(statusLine(text))
    }

    /// `WATCHDOG=1`, sent only when systemd enabled the watchdog for this process
    /// (`sd_watchdog_enabled`). Call it when work makes progress, at most every `watchdogPingInterval`.
    @discardableResult
    public func watchdog() -> Bool {
        guard watchdogInterval != nil else { return false }
        return send(["WATCHDOG=1"])
    }

    /// The unit's `WatchdogSec=` in seconds when systemd expects pings from this process, else nil.
    public var watchdogInterval: TimeInterval? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return TimeInterval(usec) / 1e6
    }

    /// How often to ping: half the watchdog interval (systemd's own advice), so one late ping
    /// is not yet fatal. Nil when the watchdog is off.
    public var watchdogPingInterval: TimeInterval? { watchdogInterval.map { $0 / 2 } }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (the CLOCK_MONOTONIC time systemd uses to match the
    /// reload with the `READY=1` that must follow once the configuration has been re-read).
    @discardableResult
    public func reloading(status: String? = nil) -> Bool {
        send(["RELOADING=1", "MONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())"] + statusLine(status))
    }

    /// `STOPPING=1`: shutting down (saving state); systemd shows the unit as deactivating.
    @discardableResult
    public func stopping(status: String? = nil) -> Bool {
        send(["STOPPING=1"] + statusLine(status))
    }

    /// Sends raw `NAME=value` assignments in one datagram (see sd_notify(3) for the names, e.g.
    /// `EXTEND_TIMEOUT_USEC=`); true when systemd received it. Values must not contain line breaks.
    @discardableResult
    public func send(_ assignments: [String]) -> Bool {
        guard isActive, !assignments.isEmpty else { return false }
        precondition(
            assignments.allSatisfy { !$0.contains("\n") && $0.contains("=") },
            "SystemdNotifier.send: each assignment is one NAME=value line, got \(assignments)")
        return sd_notify(0, assignments.joined(separator: "\n")) > 0
    }

    /// CLOCK_MONOTONIC in microseconds, the clock `MONOTONIC_USEC=` is defined on.
    public static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    private func statusLine(_ text: String?) -> [String] {
        guard let text else { return [] }
        let oneLine = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return ["STATUS=" + oneLine]
    }
}
