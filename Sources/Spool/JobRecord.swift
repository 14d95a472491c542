import Foundation

/// `work/<job>/job.json` (copied into `done/<job>/` and `failed/<job>/`): what was received and
/// when. Written atomically at claim time; `attempts` grows each time a daemon died running it.
public struct JobRecord: Codable, Equatable, Sendable {
    /// The job.
    public var id: JobID
    /// The name the teacher arrived with (for `rrmd submit`, the submitted file's name).
    public var originalName: String
    /// The teacher's file name in the job directory, e.g. `teacher.safetensors.zst`.
    public var teacher: String
    /// SHA-256 of the teacher as received, 64 lowercase hex digits.
    public var sha256: String
    /// The teacher's size in bytes (0 is possible: the runner reports such a file as bad).
    public var size: UInt64
    /// When the job was claimed (UTC, whole seconds).
    public var claimed: Date
    /// 1 at claim, plus one for each time a daemon died (killed, crashed, power lost) while
    /// running this job, so the daemon can give up on a teacher that keeps bringing it down.
    /// Restarts while the job waited, and clean stops, do not count.
    public var attempts: Int

    /// A record from its parts.
    public init(
        id: JobID, originalName: String, teacher: String, sha256: String, size: UInt64, claimed: Date, attempts: Int
    ) {
        self.id = id
        self.originalName = originalName
        self.teacher = teacher
        self.sha256 = sha256
        self.size = size
        self.claimed = claimed
        self.attempts = attempts
    }

    private enum CodingKeys: String, CodingKey {
        case id, teacher, sha256, size, claimed, attempts
        case originalName = "original_name"
    }
}

/// A job in `work/<job>/`, claimed by this spool and ready to run.
public struct ClaimedJob: Equatable, Sendable {
    /// The job's record, as in `job.json`.
    public let record: JobRecord
    /// `work/<job>/`: the runner keeps its resumable state here, in names other than
    /// `teacher*`, `job.json`, `fail` and dotfiles, which are the spool's.
    public let directory: URL

    /// A claimed job from its record and directory.
    public init(record: JobRecord, directory: URL) {
        self.record = record
        self.directory = directory
    }

    /// The job's id.
    public var id: JobID { record.id }
    /// The teacher as received, e.g. `work/<job>/teacher.safetensors.zst`; read it, never change it.
    public var teacher: URL { directory.appendingPathComponent(record.teacher, isDirectory: false) }
    /// `work/<job>/out/`: the runner writes the results here (`students/<arch>.safetensors.zst`,
    /// `report.json`, ...); `publish` turns it into `done/<job>/`.
    public var output: URL { directory.appendingPathComponent("out", isDirectory: true) }
    /// `work/<job>/job.json`.
    public var recordFile: URL { directory.appendingPathComponent("job.json", isDirectory: false) }
}
