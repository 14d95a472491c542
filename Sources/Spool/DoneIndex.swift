import Foundation

/// `done/.index.json`: the SHA-256 of each published teacher, so a duplicate is found without
/// reading every `done/*/job.json`. It is a cache of `done/` and never the truth: when its job
/// list differs from the directories in `done/` (a crash, an operator deleting a job to redo it)
/// it is rebuilt from their `job.json` files.
struct DoneIndex: Codable, Equatable {
    /// The format of this file.
    var version = 1
    /// Job id → teacher SHA-256 (empty when the job's `job.json` could not be read).
    var jobs: [String: String] = [:]
}

extension Spool {
    var indexPath: String { donePath + "/.index.json" }

    /// The published job whose teacher has this SHA-256 (the earliest if several), or nil.
    public func findDone(sha256: String) throws -> JobID? {
        let wanted = sha256.lowercased()
        return try currentIndex().jobs.filter { $0.value == wanted }.keys.compactMap { JobID($0) }.min()
    }

    /// The job ids that have a directory in `done/`.
    private func publishedJobs() throws -> Set<String> {
        Set(try FS.listIfPresent(donePath).filter { JobID($0) != nil })
    }

    /// The index file if it is readable and of this format.
    private func storedIndex() -> DoneIndex? {
        guard let index = try? Records.read(DoneIndex.self, from: indexPath), index.version == 1 else { return nil }
        return index
    }

    /// The index, rebuilt (and rewritten, best effort) when it is missing, unreadable or stale.
    func currentIndex() throws -> DoneIndex {
        let published = try publishedJobs()
        if let index = storedIndex(), Set(index.jobs.keys) == published { return index }
        var index = DoneIndex()
        for name in published {
            index.jobs[name] =
                (try? Records.read(JobRecord.self, from: donePath + "/" + name + "/job.json"))?.sha256 ?? ""
        }
        // A read-only spool can still answer; the next writer fixes the file.
        try? Records.write(index, to: indexPath)
        return index
    }

    /// Adds a just-published job to the index; when the index was stale anyway (or the hash is
    /// not known) it is rebuilt instead, which includes the job.
    func recordDone(_ job: JobID, sha256: String?) throws {
        let published = try publishedJobs()
        guard let sha256, var index = storedIndex(),
            Set(index.jobs.keys).subtracting([job.rawValue]) == published.subtracting([job.rawValue])
        else {
            _ = try currentIndex()
            return
        }
        index.jobs[job.rawValue] = sha256
        try Records.write(index, to: indexPath)
    }
}
