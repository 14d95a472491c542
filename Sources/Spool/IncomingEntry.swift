import Foundation

/// A regular file in `incoming/`, as one scan saw it.
public struct IncomingEntry: Equatable, Sendable {
    /// The file's name in `incoming/`.
    public let name: String
    /// The job id the name carries (files from `rrmd submit`), or nil: the claim makes one.
    public let job: JobID?
    /// The name the teacher was submitted with, or `name` for a file dropped in by hand.
    public let originalName: String
    /// When it arrived: the id's time for submitted files, the modification time for others.
    public let arrived: Date
    /// Its size at scan time.
    public let size: UInt64
    /// Its modification time (nanosecond resolution), which orders files whose ids share a second.
    public let modified: Date

    /// An entry from its parts (`modified` defaults to `arrived`).
    public init(name: String, job: JobID?, originalName: String, arrived: Date, size: UInt64, modified: Date? = nil) {
        self.name = name
        self.job = job
        self.originalName = originalName
        self.arrived = arrived
        self.size = size
        self.modified = modified ?? arrived
    }

    /// Arrival order: by arrival time, then (ids carry whole seconds, so several submissions can
    /// share one) by modification time, then by name.
    static func arrivalOrder(_ a: IncomingEntry, _ b: IncomingEntry) -> Bool {
        if a.arrived != b.arrived { return a.arrived < b.arrived }
        if a.modified != b.modified { return a.modified < b.modified }
        return a.name < b.name
    }
}

/// Something in `incoming/` that was not a regular file and went to `failed/<job>/` unopened.
public struct RefusedEntry: Equatable, Sendable {
    /// The job id it was filed under.
    public let job: JobID
    /// Its name in `incoming/`.
    public let name: String
    /// What was written to its `error.json`.
    public let failure: SpoolFailure

    /// A refused entry from its parts.
    public init(job: JobID, name: String, failure: SpoolFailure) {
        self.job = job
        self.name = name
        self.failure = failure
    }
}

/// The result of one look at `incoming/`.
public struct IncomingScan: Equatable, Sendable {
    /// Regular files waiting, in arrival order: claim them in this order.
    public var entries: [IncomingEntry] = []
    /// Special files moved to `failed/` during this scan (log them).
    public var refused: [RefusedEntry] = []
    /// Entries left where they were because looking at or moving them failed; the next scan
    /// tries again (log them; `isTransient` says whether waiting may help).
    public var problems: [SpoolError] = []

    /// An empty scan.
    public init() {}
}
