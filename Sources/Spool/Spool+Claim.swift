import FileSystem
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Spool {
    /// Claims `entry`: renames it into `work/<job>/teacher<ext>`, hashes it and writes
    /// `job.json`. Returns nil when the entry is gone (another claimer won, or it was removed),
    /// which is not an error.
    ///
    /// The job id is the one in the entry's name, unless that id is already in use, in which case
    /// (and for files dropped in by hand) a new one is made. The teacher is opened only after the
    /// rename, with `O_NOFOLLOW | O_NONBLOCK`, and must be a regular file; if something else was
    /// swapped in since the scan it goes to `failed/` unopened and `SpoolError.refused` is thrown.
    /// Any other error after the rename puts the teacher back into `incoming/`, so the claim can
    /// be retried; a crash at any point leaves a state `recover()` completes or undoes.
    public func claim(_ entry: IncomingEntry) throws -> ClaimedJob? {
        let job = try takeWorkDirectory(preferring: entry.job)
        let directory = workPath(job)
        let teacher = SpoolNames.teacherName(for: entry.name)
        do {
            try FS.move(incomingPath + "/" + entry.name, directory + "/" + teacher)
        } catch {
            // Leave no half-claim behind; recovery would remove it anyway.
            try? FS.removeDirectory(directory)
            if case .system(_, _, ENOENT)? = error as? FileSystemError { return nil }
            throw error
        }
        do {
            try FS.syncDirectories(incomingPath, directory)
            return try completeClaim(job: job, teacher: teacher, originalName: entry.originalName, attempts: 1)
        } catch SpoolError.refused(let refused) {
            throw SpoolError.refused(refused)
        } catch {
            // Hand the teacher back to incoming/ so that retrying the claim later (say, once
            // the disk has room for job.json) simply works.
            putBack(job: job, teacher: teacher, as: entry.name)
            throw error
        }
    }

    /// Undoes the first half of a claim or refusal: renames the teacher back to
    /// `incoming/<name>` and removes `work/<job>/`. Not when a failure was already committed
    /// (`fail/error.json` exists), and not when the rename back fails: recovery then finishes
    /// what was started, at the next start-up.
    func putBack(job: JobID, teacher: String, as name: String) {
        let directory = workPath(job)
        guard !FS.exists(directory + "/" + Self.failStaging + "/error.json") else { return }
        do {
            try FS.moveNoReplace(directory + "/" + teacher, incomingPath + "/" + name)
            try FS.removeTree(directory)
            try FS.syncDirectories(incomingPath, workPath)
        } catch {
            // Left for recover().
        }
    }

    /// The second half of a claim, also run by recovery when a crash came between the rename and
    /// `job.json`: checks that `work/<job>/<teacher>` is a regular file, hashes it and writes the record.
    func completeClaim(
        job: JobID, teacher: String, originalName: String, attempts: Int,
        shouldStop: () -> Bool = { false }
    ) throws -> ClaimedJob {
        let directory = workPath(job)
        let path = directory + "/" + teacher
        guard let found = try FS.info(path) else {
            throw SpoolError.missing(
                path: path, reason: "the teacher of job \(job) vanished while it was being claimed")
        }
        guard found.kind == .regular else {
            throw try refuseClaimed(job: job, teacher: teacher, originalName: originalName, kind: found.kind)
        }

        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            // ELOOP: a link appeared between lstat and open.
            if errno == ELOOP {
                throw try refuseClaimed(job: job, teacher: teacher, originalName: originalName, kind: .symlink)
            }
            throw FS.error("open", path)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let error = FS.error("fstat", path)
            close(fd)
            throw error
        }
        guard FS.Kind(mode: st.st_mode) == .regular else {
            close(fd)
            throw try refuseClaimed(
                job: job, teacher: teacher, originalName: originalName, kind: FS.Kind(mode: st.st_mode))
        }
        let digest: (sha256: String, size: UInt64)
        do {
            defer { close(fd) }
            digest = try Self.hash(fd: fd, path: path, shouldStop: shouldStop)
        }

        let record = JobRecord(
            id: job, originalName: originalName, teacher: teacher, sha256: digest.sha256,
            size: digest.size, claimed: Records.now(), attempts: attempts)
        let claimed = ClaimedJob(record: record, directory: URL(fileURLWithPath: directory, isDirectory: true))
        try Records.write(record, to: claimed.recordFile.path)
        return claimed
    }

    /// Sends a claimed teacher that turned out not to be a regular file to `failed/` and returns
    /// the error that says so.
    private func refuseClaimed(job: JobID, teacher: String, originalName: String, kind: FS.Kind) throws -> SpoolError {
        let path = workPath(job) + "/" + teacher
        let target = kind == .symlink ? Self.readLink(path) : nil
        let failure = SpoolFailure.specialFile(name: originalName, kind: kind, linkTarget: target)
        try fail(job: job, failure: failure)
        return .refused(RefusedEntry(job: job, name: originalName, failure: failure))
    }

    /// SHA-256 and length of everything readable from `fd`, in 1 MiB pieces.
    static func hash(
        fd: Int32, path: String, shouldStop: () -> Bool = { false }
    ) throws -> (sha256: String, size: UInt64) {
        var hasher = SHA256()
        var size: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FS.error("read", path)
            }
            if count == 0 { break }
            // A teacher of gigabytes takes seconds to hash: a stop request must not wait for it.
            if shouldStop() { throw SpoolError.stopped }
            // A raw buffer hashes about 3x faster than an array slice through the generic update.
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            size += UInt64(count)
        }
        return (hasher.finalizeHex(), size)
    }
}
