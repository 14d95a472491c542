import Foundation

extension Spool {
    /// Publishes a finished job: `work/<job>/out/` (which the runner filled) gains the teacher
    /// and `job.json` and is renamed to `done/<job>/` in one step; then `work/<job>/` is removed
    /// and the duplicate index learns the teacher's hash. Returns `done/<job>/`.
    ///
    /// Everything in `out/` is flushed to disk first and leftover `.*.tmp` files of interrupted
    /// atomic writes are dropped, so `done/<job>/` never shows a half-written file. Moving the
    /// teacher into `out/` is the commit point: after it, recovery finishes the publication.
    @discardableResult
    public func publish(_ job: ClaimedJob) throws -> URL {
        let directory = workPath(job.id)
        let out = directory + "/out"
        let done = donePath(job.id)
        guard FS.exists(directory) else {
            throw SpoolError.missing(
                path: directory,
                reason: "job \(job.id) is not in work/, so it cannot be published (was it published or failed already?)"
            )
        }
        guard !FS.exists(done) else {
            throw SpoolError.alreadyExists(
                path: done,
                reason: "job \(job.id) was published before; move that directory aside to publish the job again")
        }
        try FS.makeDirectory(out)
        try Self.settle(out)
        try Records.write(job.record, to: out + "/job.json")
        let teacher = directory + "/" + job.record.teacher
        if FS.exists(teacher) {
            try FS.moveNoReplace(teacher, out + "/" + job.record.teacher)
            try FS.syncDirectories(directory, out)
        } else if !FS.exists(out + "/" + job.record.teacher) {
            throw SpoolError.missing(
                path: teacher,
                reason:
                    "the teacher of job \(job.id) is gone, so the job cannot be published with it; fail the job instead"
            )
        }
        try completePublish(job: job.id, sha256: job.record.sha256)
        return layout.doneDirectory(job.id)
    }

    /// Renames `work/<job>/out/` (teacher inside: committed) to `done/<job>/`, removes the work
    /// directory and updates the index. Recovery runs it for a publication a crash interrupted.
    func completePublish(job: JobID, sha256: String?) throws {
        let directory = workPath(job)
        try FS.moveNoReplace(directory + "/out", donePath(job))
        try FS.syncDirectories(donePath, directory)
        // The job is published; what follows is tidying that recovery would also do, so its
        // failures must not make the runner believe the job failed.
        try? removeWorkDirectory(job)
        try? recordDone(job, sha256: sha256)
    }

    /// Removes the dot-temporaries of interrupted atomic writes under `directory` and flushes
    /// every file and directory below it, deepest first. Links and special files are neither
    /// followed nor opened.
    static func settle(_ directory: String) throws {
        for name in try FS.list(directory) {
            let path = directory + "/" + name
            guard let found = try FS.info(path) else { continue }
            if name.hasPrefix(".") && name.hasSuffix(".tmp") && found.kind == .regular {
                try FS.remove(path)
            } else if found.kind == .directory {
                try settle(path)
            } else if found.kind == .regular {
                try FS.syncFile(path)
            }
        }
        try FS.syncDirectory(directory)
    }
}
