import Foundation

extension Spool {
    /// The staging directory inside `work/<job>/` where a failure is assembled before it is
    /// renamed to `failed/<job>/`.
    static let failStaging = "fail"

    /// Fails a claimed job: `failed/<job>/` appears at once with the teacher as received,
    /// `job.json` and `error.json` (`job`, `kind`, `what`, `where`, `what_to_do`, `time`), and
    /// `work/<job>/` is removed with whatever the runner kept there.
    public func fail(_ job: ClaimedJob, error failure: SpoolFailure) throws {
        try fail(job: job.id, failure: failure)
    }

    /// Fails a job whose teacher is identical to the already published `existing`
    /// (kind `duplicate`); the runner calls it when `findDone(sha256:)` finds a match.
    public func rejectDuplicate(_ job: ClaimedJob, of existing: JobID) throws {
        let failure = SpoolFailure.duplicate(
            of: existing, sha256: job.record.sha256,
            whereText: "\(job.record.originalName) (job \(job.id))")
        try fail(job: job.id, failure: failure)
    }

    /// Fails the job in `work/<job>/`. Writing `fail/error.json` is the commit point: before it
    /// a crash leaves the job as it was; after it recovery finishes the failure.
    func fail(job: JobID, failure: SpoolFailure) throws {
        let directory = workPath(job)
        guard FS.exists(directory) else {
            throw SpoolError.missing(
                path: directory,
                reason: "job \(job) is not in work/, so it cannot be failed (was it published or failed already?)")
        }
        guard !FS.exists(failedPath(job)) else {
            throw SpoolError.alreadyExists(
                path: failedPath(job),
                reason: "job \(job) has failed before; move that directory aside to fail the job again")
        }
        let staging = directory + "/" + Self.failStaging
        try FS.makeDirectory(staging)
        try Records.write(FailureRecord(job: job, failure: failure, time: Records.now()), to: staging + "/error.json")
        try completeFail(job: job)
    }

    /// Moves the teacher and `job.json` into `work/<job>/fail/` (from wherever a crash left the
    /// teacher: the job directory or `out/`), renames it to `failed/<job>/` and removes the rest.
    func completeFail(job: JobID) throws {
        let directory = workPath(job)
        let staging = directory + "/" + Self.failStaging
        for from in [directory, directory + "/out"] {
            for name in try teacherNames(in: from) { try FS.moveNoReplace(from + "/" + name, staging + "/" + name) }
        }
        if FS.exists(directory + "/job.json") { try FS.move(directory + "/job.json", staging + "/job.json") }
        try FS.syncDirectories(directory, staging)
        try FS.moveNoReplace(staging, failedPath(job))
        try FS.syncDirectories(failedPath, directory)
        // The job has failed; what follows is tidying that recovery would also do.
        try? removeWorkDirectory(job)
    }

    /// Removes `work/<job>/` once its outcome is in `done/` or `failed/`. A failure here is only
    /// logged by the caller: the job is safe, and recovery removes the leftover.
    func removeWorkDirectory(_ job: JobID) throws {
        try FS.removeTree(workPath(job))
        try FS.syncDirectory(workPath)
    }

    /// The `error.json` of `failed/<job>/`, or nil when there is none.
    public func failure(of job: JobID) throws -> FailureRecord? {
        try Records.read(FailureRecord.self, from: failedPath(job) + "/error.json")
    }
}
