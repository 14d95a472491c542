import Foundation

/// `status.json`: what the daemon is doing, written atomically by the daemon whenever that
/// changes and read by `rrmd status`. Keys are snake_case; times are ISO 8601 UTC.
public struct SpoolStatus: Codable, Equatable, Sendable {
    /// What the daemon as a whole is doing.
    public enum State: String, Codable, Sendable {
        /// Waiting for teachers.
        case idle
        /// Running a job.
        case working
        /// Shutting down (after SIGTERM or `systemctl stop`); the job resumes at the next start.
        case stopping
    }

    /// Where the current job is.
    public enum Phase: String, Codable, Sendable {
        /// Claimed, being checked (hash, duplicate, loading).
        case claimed
        /// A student is being distilled.
        case training
        /// A student is being attacked to measure its robustness.
        case evaluating
        /// The results are being moved to `done/`.
        case publishing
    }

    /// How a job ended.
    public enum Outcome: String, Codable, Sendable {
        /// Published in `done/`.
        case done
        /// Moved to `failed/` for any reason but a duplicate.
        case failed
        /// Moved to `failed/` because an identical teacher was already done.
        case duplicate
    }

    /// The job being worked on. Progress fields are nil when they do not apply (e.g. no epoch
    /// while evaluating); non-finite numbers are written as absent.
    public struct CurrentJob: Codable, Equatable, Sendable {
        /// The job.
        public var id: JobID
        /// The teacher's original name.
        public var teacher: String
        /// The student architecture being made, e.g. `resnet20`.
        public var arch: String?
        /// Where the job is.
        public var phase: Phase
        /// The current epoch, 1-based.
        public var epoch: Int?
        /// Epochs in all.
        public var epochs: Int?
        /// The current step within the epoch (or attack batch), 1-based.
        public var step: Int?
        /// Steps in all.
        public var steps: Int?
        /// The latest accuracy measured, in [0, 1].
        public var accuracy: Double?
        /// Estimated seconds until the job is done.
        public var etaSeconds: Double?
        /// The job's Slurm jobs (Slurm executor only), one per task: the teacher's evaluation and
        /// each student.
        public var slurm: [SlurmTaskState]?

        /// A current job; progress is filled in as it comes.
        public init(
            id: JobID, teacher: String, arch: String? = nil, phase: Phase, epoch: Int? = nil, epochs: Int? = nil,
            step: Int? = nil, steps: Int? = nil, accuracy: Double? = nil, etaSeconds: Double? = nil
        ) {
            self.id = id
            self.teacher = teacher
            self.arch = arch
            self.phase = phase
            self.epoch = epoch
            self.epochs = epochs
            self.step = step
            self.steps = steps
            self.accuracy = accuracy
            self.etaSeconds = etaSeconds
        }

        private enum CodingKeys: String, CodingKey {
            case id, teacher, arch, phase, epoch, epochs, step, steps, accuracy
            case etaSeconds = "eta_seconds"
            case slurm
        }

        /// Writes the job; JSON has no infinity or NaN, so such a number is left out.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(teacher, forKey: .teacher)
            try c.encodeIfPresent(arch, forKey: .arch)
            try c.encode(phase, forKey: .phase)
            try c.encodeIfPresent(epoch, forKey: .epoch)
            try c.encodeIfPresent(epochs, forKey: .epochs)
            try c.encodeIfPresent(step, forKey: .step)
            try c.encodeIfPresent(steps, forKey: .steps)
            try c.encodeIfPresent(accuracy.flatMap { $0.isFinite ? $0 : nil }, forKey: .accuracy)
            try c.encodeIfPresent(etaSeconds.flatMap { $0.isFinite ? $0 : nil }, forKey: .etaSeconds)
            try c.encodeIfPresent(slurm, forKey: .slurm)
        }
    }

    /// Where one task of a job run by the Slurm executor stands.
    public struct SlurmTaskState: Codable, Equatable, Sendable {
        /// `teacher` (its evaluation) or the student's architecture.
        public var task: String
        /// The Slurm job id of its latest submission.
        public var job: String
        /// Slurm's state (PENDING, RUNNING, ...), `DONE` once its result is in, or `UNREACHABLE`.
        public var state: String
        /// How often it was submitted.
        public var submissions: Int

        /// A task's state; see the properties.
        public init(task: String, job: String, state: String, submissions: Int) {
            self.task = task
            self.job = job
            self.state = state
            self.submissions = submissions
        }
    }

    /// A job that ended recently.
    public struct RecentJob: Codable, Equatable, Sendable {
        /// The job.
        public var job: JobID
        /// How it ended.
        public var outcome: Outcome
        /// When (UTC).
        public var time: Date
        /// One line, e.g. `resnet20: clean 0.81 robust 0.42` or the failure's `what`.
        public var summary: String

        /// A finished job.
        public init(job: JobID, outcome: Outcome, time: Date, summary: String) {
            self.job = job
            self.outcome = outcome
            self.time = time
            self.summary = summary
        }
    }

    /// How many recent jobs are kept.
    public static let recentLimit = 20

    /// What the daemon is doing.
    public var state: State
    /// The daemon's process id.
    public var pid: Int32
    /// When this status was written (set by `Spool.writeStatus`).
    public var updated: Date
    /// The job being worked on, if any.
    public var current: CurrentJob?
    /// The `incoming/` names waiting, in arrival order (submitted files start with their job id).
    public var queue: [String]
    /// Jobs that ended recently, newest first, at most `recentLimit`.
    public var recent: [RecentJob]

    /// A status; `updated` is stamped when it is written.
    public init(
        state: State, pid: Int32, updated: Date = Date(timeIntervalSince1970: 0), current: CurrentJob? = nil,
        queue: [String] = [], recent: [RecentJob] = []
    ) {
        self.state = state
        self.pid = pid
        self.updated = updated
        self.current = current
        self.queue = queue
        self.recent = Array(recent.prefix(Self.recentLimit))
    }

    /// Puts `job` first among the recent jobs and forgets the oldest beyond `recentLimit`.
    public mutating func remember(_ job: RecentJob) {
        recent.insert(job, at: 0)
        if recent.count > Self.recentLimit { recent.removeLast(recent.count - Self.recentLimit) }
    }
}
