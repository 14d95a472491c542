import Foundation

/// Where the spool's states live under one root directory (design.md §3, docs/spool.md).
///
/// All of it must be on one filesystem, because every transition is a `rename(2)`.
public struct SpoolLayout: Sendable, Equatable {
    /// The spool root, e.g. `/var/lib/rrmd/spool` or `Spool/` in a checkout.
    public let root: URL
    /// `tmp/`: submissions being copied (`*.part`), invisible to the watcher.
    public let tmp: URL
    /// `incoming/`: complete teachers waiting to be claimed.
    public let incoming: URL
    /// `work/`: one directory per claimed job.
    public let work: URL
    /// `done/`: one directory per published job, and the duplicate index `.index.json`.
    public let done: URL
    /// `failed/`: one directory per failed or refused job, each with `error.json`.
    public let failed: URL
    /// `status.json`: the daemon's own account of what it is doing.
    public let statusFile: URL

    /// The layout under `root`; nothing is created until `create()`.
    public init(root: URL) {
        self.root = root.standardizedFileURL
        tmp = self.root.appendingPathComponent("tmp", isDirectory: true)
        incoming = self.root.appendingPathComponent("incoming", isDirectory: true)
        work = self.root.appendingPathComponent("work", isDirectory: true)
        done = self.root.appendingPathComponent("done", isDirectory: true)
        failed = self.root.appendingPathComponent("failed", isDirectory: true)
        statusFile = self.root.appendingPathComponent("status.json", isDirectory: false)
    }

    /// Creates the root (with its parents) and each state directory that is missing, mode 0750
    /// before the umask. Existing directories keep their modes, so an operator may open
    /// `incoming/` and `tmp/` to a group of submitters.
    public func create() throws {
        var missing: [String] = []
        var path = root.path
        while !FS.exists(path) && path != "/" && !path.isEmpty {
            missing.append(path)
            path = (path as NSString).deletingLastPathComponent
        }
        for directory in missing.reversed() { try FS.makeDirectory(directory) }
        for directory in [tmp, incoming, work, done, failed] { try FS.makeDirectory(directory.path) }
    }

    /// `work/<job>/`, where a claimed job lives.
    public func workDirectory(_ job: JobID) -> URL { work.appendingPathComponent(job.rawValue, isDirectory: true) }

    /// `done/<job>/`, a published job.
    public func doneDirectory(_ job: JobID) -> URL { done.appendingPathComponent(job.rawValue, isDirectory: true) }

    /// `failed/<job>/`, a failed or refused job.
    public func failedDirectory(_ job: JobID) -> URL { failed.appendingPathComponent(job.rawValue, isDirectory: true) }
}
