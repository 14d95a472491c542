import Foundation

/// What `work/<job>/.running` holds: which process started running the job, and when.
struct RunMarker: Codable, Equatable {
    var pid: Int32
    var started: Date
}

extension Spool {
    /// `work/<job>/.running`: present exactly while a daemon runs the job. Recovery counts a
    /// restart against a job only when it finds this marker, i.e. when the daemon died while
    /// running that job; jobs that were waiting (for their turn or for a retry) are untouched.
    static let runMarker = ".running"

    /// Marks `job` as running in this process, durably (temp file, fsync, rename, directory
    /// fsync), before any of its work starts.
    public func beginRun(_ job: ClaimedJob) throws {
        try Records.write(
            RunMarker(pid: getpid(), started: Records.now()), to: job.directory.path + "/" + Self.runMarker)
    }

    /// Clears the mark of a run that ended without the daemon dying: stopped with its state
    /// saved, or waiting for a retry. A job that was published or failed has no work directory
    /// left, so there is nothing to clear.
    public func endRun(_ job: ClaimedJob) throws {
        let path = job.directory.path + "/" + Self.runMarker
        guard FS.exists(path) else { return }
        try FS.remove(path)
        try FS.syncDirectory(job.directory.path)
    }
}
