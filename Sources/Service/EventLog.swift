import CSystemd
import Foundation

/// Structured events: journald entries with `RRMD_*` fields under systemd, readable lines on
/// stderr otherwise.
///
/// Under journald each event becomes one entry with `MESSAGE=`, `PRIORITY=`,
/// `SYSLOG_IDENTIFIER=`, `RRMD_EVENT=<event>` and every field as `RRMD_<KEY>` (key uppercased),
/// so `journalctl -u rrmd RRMD_EVENT=report -o json` is a machine-readable feed. Elsewhere the
/// same event is one line: `2026-12-02T21:49:00Z rrmd[123] report job=a arch=resnet20
/// clean_acc=0.81: message`. Field keys are fixed in code, so a key that journald would reject is
/// a programmer error and stops the process with the reason. Safe to use from any thread.
public final class EventLog: @unchecked Sendable {
    /// Severity, with syslog's numbering (journald's `PRIORITY=`).
    public enum Priority: Int, Sendable, CaseIterable {
        /// The system is unusable.
        case emergency = 0
        /// Action must be taken immediately.
        case alert = 1
        /// Critical conditions.
        case critical = 2
        /// A job or the service failed.
        case error = 3
        /// Something went wrong but was worked around (a retry, a rejected input).
        case warning = 4
        /// Normal but significant: job started, finished, report ready.
        case notice = 5
        /// Progress.
        case info = 6
        /// Detail for debugging.
        case debug = 7

        /// The lowercase name (`warning`), as in journalctl's `-p` option.
        public var name: String {
            switch self {
            case .emergency: return "emerg"
            case .alert: return "alert"
            case .critical: return "crit"
            case .error: return "err"
            case .warning: return "warning"
            case .notice: return "notice"
            case .info: return "info"
            case .debug: return "debug"
            }
        }
    }

    /// Where entries go.
    public enum Destination: Sendable, Equatable {
        /// The systemd journal (`sd_journal_sendv`); lines go to stderr if journald refuses them.
        case journal
        /// Readable lines written to this file descriptor.
        case fileDescriptor(Int32)

        /// Lines on stderr.
        public static let stderr = Destination.fileDescriptor(STDERR_FILENO)

        /// The journal when this process runs under systemd (see `EventLog.runsUnderJournald`), else stderr.
        public static func automatic(environment: [String: String] = ProcessInfo.processInfo.environment) -> Destination
        {
            EventLog.runsUnderJournald(environment: environment) ? .journal : .stderr
        }
    }

    /// `SYSLOG_IDENTIFIER=` and the name in front of each line.
    public let identifier: String
    /// Where this log writes.
    public let destination: Destination
    /// Prefix of every journal field rrmd adds.
    public static let fieldPrefix = "RRMD_"

    private let lock = NSLock()
    private let pid = getpid()

    /// A log named `identifier` writing to `destination` (default: journal under systemd, else stderr).
    public init(identifier: String = "rrmd", destination: Destination = .automatic()) {
        self.identifier = identifier
        self.destination = destination
    }

    /// Records `event` (a short kebab-case word such as `report`, `job-failed`) with a readable
    /// `message` and `fields` (keys such as `job`, `clean_acc`; letters, digits and `_`).
    public func log(event: String, priority: Priority = .info, message: String, fields: [String: String] = [:]) {
        EventLog.checkEvent(event)
        for key in fields.keys { _ = EventLog.journalFieldName(forKey: key) }
        lock.lock()
        defer { lock.unlock() }
        if destination == .journal {
            let assignments = EventLog.journalAssignments(
                identifier: identifier, event: event, priority: priority,
                message: message, fields: fields)
            if EventLog.sendToJournal(assignments) { return }
        }
        let fd: Int32
        if case .fileDescriptor(let f) = destination { fd = f } else { fd = STDERR_FILENO }
        let line = EventLog.formatLine(
            date: Date(), identifier: identifier, pid: pid, event: event,
            priority: priority, message: message, fields: fields)
        EventLog.writeAll(fd, line + "\n")
    }

    // MARK: - Journal

    /// The journal field for a field key: `clean_acc` -> `RRMD_CLEAN_ACC`. Stops the process when
    /// the key, uppercased, is not 1 to 59 of A-Z, 0-9 and `_`, or is `event` (journald accepts
    /// only such names, at most 64 characters, and `RRMD_EVENT` carries the event).
    public static func journalFieldName(forKey key: String) -> String {
        precondition(
            isValidFieldKey(key),
            "EventLog: field key '\(key)' must be 1 to \(64 - fieldPrefix.count) letters, digits or underscores, and "
                + "not 'event'"
        )
        return fieldPrefix + key.uppercased()
    }

    /// Whether `key` can be a field: uppercased, 1 to 59 of A-Z, 0-9, `_` (with the `RRMD_`
    /// prefix that fills journald's 64-character limit), and not `event`.
    public static func isValidFieldKey(_ key: String) -> Bool {
        // Checked before uppercasing: Unicode case mapping could turn a non-ASCII key into ASCII
        // ("ß" -> "SS"), and the line and the journal would then name the field differently.
        let scalars = key.unicodeScalars
        return !scalars.isEmpty && scalars.count <= 64 - fieldPrefix.count && key.uppercased() != "EVENT"
            && scalars.allSatisfy {
                ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
            }
    }

    /// The `NAME=value` assignments of one journal entry, in the order they are sent.
    public static func journalAssignments(
        identifier: String, event: String, priority: Priority, message: String,
        fields: [String: String]
    ) -> [String] {
        var out = [
            "MESSAGE=" + message, "PRIORITY=\(priority.rawValue)", "SYSLOG_IDENTIFIER=" + identifier,
            fieldPrefix + "EVENT=" + event,
        ]
        for key in orderedKeys(fields) { out.append(journalFieldName(forKey: key) + "=" + fields[key]!) }
        return out
    }

    /// Whether stderr is connected to journald: `JOURNAL_STREAM` (set by systemd to the device and
    /// inode of the stream it gave the service) matches stderr's, or, when systemd gave no stream
    /// (e.g. `StandardError=file:`), `INVOCATION_ID` says systemd started the process. A matching
    /// check matters because a service may redirect stderr itself, and then wants lines there.
    public static func runsUnderJournald(environment: [String: String], stderrDescriptor: Int32 = STDERR_FILENO) -> Bool
    {
        if let stream = environment["JOURNAL_STREAM"] {
            var st = stat()
            guard fstat(stderrDescriptor, &st) == 0 else { return false }
            return stream == "\(st.st_dev):\(st.st_ino)"
        }
        return environment["INVOCATION_ID"] != nil
    }

    /// Sends one entry; false when journald is not there to take it.
    private static func sendToJournal(_ assignments: [String]) -> Bool {
        // One buffer holds every assignment back to back; the iovecs point into it, so nothing
        // they reference can move or be freed during the call.
        let total = assignments.reduce(0) { $0 + $1.utf8.count }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
        defer { storage.deallocate() }
        var vectors = [iovec]()
        vectors.reserveCapacity(assignments.count)
        var offset = 0
        for assignment in assignments {
            let count = assignment.utf8.count
            UnsafeMutableRawBufferPointer(rebasing: storage[offset..<offset + count]).copyBytes(from: assignment.utf8)
            vectors.append(iovec(iov_base: storage.baseAddress! + offset, iov_len: count))
            offset += count
        }
        return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) >= 0 }
    }

    // MARK: - Lines

    /// One readable line (without the newline): UTC time, `identifier[pid]`, the priority when it
    /// is warning or worse, the event, `key=value` fields (`job` and `arch` first, the rest sorted;
    /// values with spaces, quotes, `=` or line breaks quoted), then `: message`.
    public static func formatLine(
        date: Date, identifier: String, pid: Int32, event: String, priority: Priority,
        message: String, fields: [String: String]
    ) -> String {
        var line = timestamp(date) + " \(identifier)[\(pid)] "
        if priority.rawValue <= Priority.warning.rawValue { line += priority.name.uppercased() + " " }
        line += event
        for key in orderedKeys(fields) { line += " " + key.lowercased() + "=" + quoted(fields[key]!) }
        line += ": " + escapeLineBreaks(message)
        return line
    }

    /// `job` and `arch` name what an event is about, so they lead; the rest follow sorted, so lines
    /// of the same event line up.
    static func orderedKeys(_ fields: [String: String]) -> [String] {
        let leading = ["job", "arch"].filter { fields[$0] != nil }
        return leading + fields.keys.filter { !leading.contains($0) }.sorted()
    }

    static func quoted(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty
            || value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.isNewline || $0 == "\t" }
        guard needsQuotes else { return value }
        var out = "\""
        for ch in value {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.append(ch)
            }
        }
        return out + "\""
    }

    static func escapeLineBreaks(_ text: String) -> String {
        // One event per line keeps `grep` and log shippers working on multi-line error messages.
        text.replacingOccurrences(of: "\r\n", with: "\\n").replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: "\r", with: "\\n")
    }

    /// `2026-12-02T21:49:00Z`, built with `gmtime_r` (thread-safe, no formatter objects).
    static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    /// An event name must be one word a query can match: letters, digits, `-`, `_`, `.`.
    static func checkEvent(_ event: String) {
        precondition(
            !event.isEmpty
                && event.unicodeScalars.allSatisfy {
                    ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                        || "-_.".unicodeScalars.contains($0)
                }, "EventLog: event name '\(event)' must be one word of letters, digits, '-', '_' or '.'")
    }

    private static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        bytes.withUnsafeMutableBytes { raw in
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}
