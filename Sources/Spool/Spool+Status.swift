import Foundation

extension Spool {
    /// Writes `status` to `status.json` atomically, with `updated` set to now. It fsyncs, so
    /// write on changes of state and at most every few seconds for progress.
    public func writeStatus(_ status: SpoolStatus) throws {
        var stamped = status
        stamped.updated = Records.now()
        try Records.write(stamped, to: layout.statusFile.path)
    }

    /// The last status the daemon wrote, or nil when there is none (never started here).
    public func readStatus() throws -> SpoolStatus? {
        try Records.read(SpoolStatus.self, from: layout.statusFile.path)
    }
}
