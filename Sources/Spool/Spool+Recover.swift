import Foundation

/// What `recover()` found and did at start-up.
public struct SpoolRecovery: Equatable, Sendable {
    /// Jobs in `work/` to resume, in id order, with their state intact; `attempts` is counted up
    /// for the one a daemon died running (it left its run marker).
    public var resumable: [ClaimedJob] = []
    /// One line per repair (`work/<job>: ...; ...`), for the journal.
    public var notes: [String] = []
    /// Jobs left as they were because repairing them failed; the next start-up tries again.
    public var problems: [SpoolError] = []

    /// Nothing found yet.
    public init() {}
}

extension Spool {
    /// Brings the spool back to a clean state after a crash or stop; call it once at start-up,
    /// before the first scan. Creates missing directories; finishes claims, publications and
    /// failures a crash interrupted; removes half-claims (empty `work/<job>/`), work directories
    /// of jobs already in `done/` or `failed/`, leftover temporaries of atomic writes, and
    /// `tmp/*.part` copies untouched for `partialSubmissionAge` seconds (an `rrmd submit` that
    /// died; a younger one may still be copying). Returns the jobs to resume.
    /// `shouldStop` is asked while a teacher is hashed; when it answers true, recovery throws
    /// `SpoolError.stopped` and leaves that job as it found it, for the next start.
    public func recover(
        partialSubmissionAge: TimeInterval = 3600, shouldStop: () -> Bool = { false }
    ) throws -> SpoolRecovery {
        try layout.create()
        var recovery = SpoolRecovery()
        try Self.removeTemporaries(in: layout.root.path)
        try Self.removeTemporaries(in: donePath)
        for name in try FS.list(tmpPath) where name.hasSuffix(".part") {
            let path = tmpPath + "/" + name
            if let found = try FS.info(path), found.kind == .regular,
                Date().timeIntervalSince(found.modified) > partialSubmissionAge
            {
                try FS.remove(path)
                recovery.notes.append(
                    "tmp/\(name): an abandoned submission (unchanged for over \(Int(partialSubmissionAge)) s); removed")
            }
        }
        for name in try FS.list(workPath).sorted() where !name.hasPrefix(".") {
            guard let job = JobID(name) else {
                recovery.notes.append("work/\(name): not a job directory (its name is not a job id); left alone")
                continue
            }
            do {
                if let resumed = try recover(job: job, notes: &recovery.notes, shouldStop: shouldStop) {
                    recovery.resumable.append(resumed)
                }
            } catch SpoolError.stopped {
                throw SpoolError.stopped
            } catch let error as SpoolError {
                recovery.problems.append(error)
            }
        }
        _ = try? currentIndex()
        return recovery
    }

    /// Recovers `work/<job>/` by the table in docs/spool.md; returns the job if it is to resume.
    private func recover(job: JobID, notes: inout [String], shouldStop: () -> Bool) throws -> ClaimedJob? {
        let directory = workPath(job)
        let here = "work/\(job)"
        guard try FS.info(directory)?.kind == .directory else {
            notes.append("\(here): not a directory; left alone")
            return nil
        }
        try Self.removeTemporaries(in: directory)

        // The outcome was already moved out; only the tidying was interrupted.
        for (state, path) in [("done", donePath(job)), ("failed", failedPath(job))] where FS.exists(path) {
            try removeWorkDirectory(job)
            notes.append(
                "\(here): already in \(state)/\(job) (a crash came before the clean-up); removed the leftover work "
                    + "directory"
            )
            return nil
        }

        let staging = directory + "/" + Self.failStaging
        if FS.exists(staging) {
            if FS.exists(staging + "/error.json") {
                try completeFail(job: job)
                notes.append(
                    "\(here): a failure was being recorded when rrmd stopped; finished it, see failed/\(job)/error.json"
                )
                return nil
            }
            // The failure was not committed (no error.json): the job is as it was.
            try FS.removeTree(staging)
            try FS.syncDirectory(directory)
        }

        let teachers = try teacherNames(in: directory)
        let out = directory + "/out"
        if teachers.isEmpty, !(try teacherNames(in: out)).isEmpty {
            // The teacher is in out/: publication was committed but out/ not yet renamed.
            if !FS.exists(out + "/job.json"),
                let record = try? Records.read(JobRecord.self, from: directory + "/job.json")
            {
                try Records.write(record, to: out + "/job.json")
            }
            let sha256 = (try? Records.read(JobRecord.self, from: out + "/job.json"))?.sha256
            try completePublish(job: job, sha256: sha256)
            notes.append("\(here): was being published when rrmd stopped; finished, see done/\(job)")
            return nil
        }

        guard let teacher = teachers.first else {
            if try FS.list(directory).isEmpty {
                try FS.removeDirectory(directory)
                try FS.syncDirectory(workPath)
                notes.append(
                    "\(here): empty (a claim interrupted before the teacher was moved in; the teacher is still in "
                        + "incoming/); removed"
                )
                return nil
            }
            try fail(
                job: job,
                failure: SpoolFailure(
                    kind: SpoolFailure.missingTeacherKind,
                    what:
                        "the teacher is missing from the job's work directory (removed by hand?), so the job cannot "
                            + "run",
                    whereText: here,
                    whatToDo: "submit the teacher again"))
            notes.append("\(here): the teacher is missing; failed the job, see failed/\(job)/error.json")
            return nil
        }

        // Only the job a daemon died running counts the restart (its run marker survived);
        // jobs that were waiting are untouched, however many restarts there are.
        let marker = directory + "/" + Self.runMarker
        let died = FS.exists(marker)
        do {
            let found = try? Records.read(JobRecord.self, from: directory + "/job.json")
            if var record = found, record.teacher == teacher {
                guard try FS.info(directory + "/" + teacher)?.kind == .regular else {
                    // Claimed as a regular file, now something else: re-run the claim's check.
                    return try completeClaim(
                        job: job, teacher: teacher, originalName: record.originalName,
                        attempts: record.attempts + (died ? 1 : 0), shouldStop: shouldStop)
                }
                let claimed = ClaimedJob(record: record, directory: URL(fileURLWithPath: directory, isDirectory: true))
                if died {
                    record.attempts += 1
                    // The count is written before the marker goes: a crash in between counts
                    // the same death twice at worst, never not at all.
                    try Records.write(record, to: claimed.recordFile.path)
                    try FS.remove(marker)
                    try FS.syncDirectory(directory)
                    notes.append("\(here): rrmd stopped while running it; resuming (attempt \(record.attempts))")
                } else {
                    notes.append("\(here): resuming (attempt \(record.attempts))")
                }
                return ClaimedJob(record: record, directory: claimed.directory)
            }
            // A crash between moving the teacher in and writing job.json: the incoming name is
            // lost with it, so the teacher's own name stands in for the original.
            let claimed = try completeClaim(
                job: job, teacher: teacher, originalName: found?.originalName ?? teacher, attempts: 1,
                shouldStop: shouldStop)
            notes.append("\(here): a claim was interrupted before job.json was written; finished it")
            return claimed
        } catch let SpoolError.refused(entry) {
            notes.append("\(here): the teacher is \(entry.failure.what); failed the job, see failed/\(job)/error.json")
            return nil
        }
    }

    /// Removes `.*.tmp` regular files directly in `directory`: temporaries of atomic writes
    /// (job.json, status.json, the index) that a crash left behind. Nothing else is touched.
    static func removeTemporaries(in directory: String) throws {
        for name in try FS.listIfPresent(directory) where name.hasPrefix(".") && name.hasSuffix(".tmp") {
            let path = directory + "/" + name
            if try FS.info(path)?.kind == .regular { try FS.remove(path) }
        }
    }
}
