import Foundation

/// Why a job failed, as an operator reads it in `failed/<job>/error.json`: what happened, where,
/// and what to do, plus a short machine-readable `kind`.
public struct SpoolFailure: Codable, Equatable, Sendable {
    /// A short class of failure, e.g. `special-file`, `duplicate` (the spool's own), or the
    /// runner's (`invalid-checkpoint`, `diverged`, ...).
    public var kind: String
    /// What happened, in a sentence.
    public var what: String
    /// Where: the file, tensor or step concerned.
    public var whereText: String
    /// What the operator can do about it.
    public var whatToDo: String

    /// A failure from its parts.
    public init(kind: String, what: String, whereText: String, whatToDo: String) {
        self.kind = kind
        self.what = what
        self.whereText = whereText
        self.whatToDo = whatToDo
    }

    private enum CodingKeys: String, CodingKey {
        case kind, what
        case whereText = "where"
        case whatToDo = "what_to_do"
    }

    /// The kind the spool gives a symbolic link, FIFO, socket, device or directory in `incoming/`.
    public static let specialFileKind = "special-file"
    /// The kind of a teacher identical to one already done.
    public static let duplicateKind = "duplicate"
    /// The kind of a job whose teacher disappeared from its work directory.
    public static let missingTeacherKind = "missing-teacher"

    /// The failure of a job whose teacher is identical (same SHA-256) to `existing`'s.
    public static func duplicate(of existing: JobID, sha256: String, whereText: String) -> SpoolFailure {
        SpoolFailure(
            kind: duplicateKind,
            what: "identical to job \(existing) already done (sha256 \(sha256))",
            whereText: whereText,
            whatToDo: "use done/\(existing); delete done/\(existing) first to redo it")
    }

    /// The failure of an `incoming/` entry that is not a regular file.
    static func specialFile(name: String, kind: FS.Kind, linkTarget: String?) -> SpoolFailure {
        let target = linkTarget.map { " pointing to '\($0)'" } ?? ""
        let advice: String
        switch kind {
        case .symlink:
            advice =
                "copy the checkpoint itself into the spool, e.g. with 'rrmd submit FILE', which copies the bytes the "
                    + "link points to"
        case .directory:
            advice = "submit each checkpoint file on its own, e.g. 'rrmd submit DIR/*.safetensors'"
        default:
            advice = "write the checkpoint to a regular file and submit that with 'rrmd submit FILE'"
        }
        return SpoolFailure(
            kind: specialFileKind,
            what:
                "'\(name)' is \(kind.phrase)\(target), not a regular file; rrmd never follows links or opens special "
                    + "files in the spool, so it was moved here unopened",
            whereText: "incoming/\(name)",
            whatToDo: advice)
    }
}

/// `failed/<job>/error.json`: the failure with its job and time, in one flat JSON object
/// (`job`, `kind`, `what`, `where`, `what_to_do`, `time`).
public struct FailureRecord: Codable, Equatable, Sendable {
    /// The job that failed.
    public var job: JobID
    /// Why.
    public var failure: SpoolFailure
    /// When (UTC, whole seconds).
    public var time: Date

    private enum CodingKeys: String, CodingKey {
        case job, time
    }

    /// A record from its parts.
    public init(job: JobID, failure: SpoolFailure, time: Date) {
        self.job = job
        self.failure = failure
        self.time = time
    }

    /// Reads the flat object: the failure's keys sit beside `job` and `time`.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        job = try container.decode(JobID.self, forKey: .job)
        time = try container.decode(Date.self, forKey: .time)
        failure = try SpoolFailure(from: decoder)
    }

    /// Writes the flat object.
    public func encode(to encoder: Encoder) throws {
        try failure.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(job, forKey: .job)
        try container.encode(time, forKey: .time)
    }
}
