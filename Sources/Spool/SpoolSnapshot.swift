import Foundation

/// The spool's directories as they are, for `rrmd status` to show beside `status.json` (which
/// is the daemon's account and may be stale if the daemon is not running).
public struct SpoolSnapshot: Codable, Equatable, Sendable {
    /// Names waiting in `incoming/`, in arrival order (ignored names left out).
    public var incoming: [String]
    /// Job directories in `work/`, in id order.
    public var work: [String]
    /// Job directories in `done/`, in id order.
    public var done: [String]
    /// Job directories in `failed/`, in id order.
    public var failed: [String]

    /// A snapshot from its parts.
    public init(incoming: [String], work: [String], done: [String], failed: [String]) {
        self.incoming = incoming
        self.work = work
        self.done = done
        self.failed = failed
    }
}

extension Spool {
    /// Lists the state directories without changing anything; a directory not created yet is
    /// empty. Dotfiles (the index, temporaries) are left out.
    public func snapshot() throws -> SpoolSnapshot {
        func jobs(_ path: String) throws -> [String] {
            try FS.listIfPresent(path).filter { !$0.hasPrefix(".") }.sorted()
        }
        var waiting: [IncomingEntry] = []
        for name in try FS.listIfPresent(incomingPath) where !SpoolNames.isIgnored(name) {
            guard let found = try? FS.info(incomingPath + "/" + name) else { continue }
            let (job, original) = SpoolNames.parseIncoming(name)
            waiting.append(
                IncomingEntry(
                    name: name, job: job, originalName: original, arrived: job?.date ?? found.modified,
                    size: found.size,
                    modified: found.modified))
        }
        return SpoolSnapshot(
            incoming: waiting.sorted(by: IncomingEntry.arrivalOrder).map(\.name),
            work: try jobs(workPath), done: try jobs(donePath), failed: try jobs(failedPath))
    }
}
