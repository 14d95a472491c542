import FileSystem
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Spool {
    /// Submits a teacher (`rrmd submit`): copies `file` to `tmp/<job>--<name>.part`, flushes it,
    /// renames it to `incoming/<job>--<name>` and flushes both directories, so the watcher sees
    /// the whole file or nothing. The id in the name becomes the job's id when it is claimed.
    ///
    /// A symbolic link given here is followed (the bytes are read with the caller's own rights;
    /// the daemon itself never follows links). FIFOs, sockets, devices and directories are
    /// refused. Names ending in `.tmp` or `.part` are refused because the watcher would ignore
    /// them. Creates the spool's directories when they are missing.
    @discardableResult
    public func submit(file: URL) throws -> JobID {
        let source = file.path
        let name = SpoolNames.sanitized(file.lastPathComponent)
        guard !name.isEmpty, name != "/", name != ".", name != ".." else {
            throw SpoolError.unusableName(
                path: source, reason: "this is not a file name; give the path of a checkpoint file")
        }
        guard !(name.hasSuffix(".tmp") || name.hasSuffix(".part")) else {
            throw SpoolError.unusableName(
                path: source,
                reason:
                    "names ending in .tmp or .part mark unfinished copies, which the watcher ignores; rename the file "
                        + "(e.g. to .safetensors) and submit it again"
            )
        }
        // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        let input = open(source, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard input >= 0 else { throw FS.error("open", source) }
        defer { close(input) }
        var st = stat()
        guard fstat(input, &st) == 0 else { throw FS.error("fstat", source) }
        let kind = FS.Kind(mode: st.st_mode)
        guard kind == .regular else { throw SpoolError.notRegularFile(path: source, kind: kind.phrase) }

        try layout.create()
        for _ in 0..<16 {
            let job = JobID()
            let final = job.rawValue + SpoolNames.separator + name
            let part = tmpPath + "/" + final + ".part"
            let output = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
            guard output >= 0 else {
                if errno == EEXIST { continue }
                throw FS.error("create", part)
            }
            do {
                try Self.copy(from: input, source: source, to: output, destination: part, group: layout.incoming.path)
                guard close(output) == 0 else { throw FS.error("close", part) }
            } catch {
                close(output)
                try? FS.remove(part)
                throw error
            }
            do {
                try FS.moveNoReplace(part, incomingPath + "/" + final)
            } catch FileSystemError.system(_, _, EEXIST) {
                try? FS.remove(part)
                continue
            } catch {
                try? FS.remove(part)
                throw error
            }
            try FS.syncDirectories(tmpPath, incomingPath)
            return job
        }
        throw FileSystemError.system(
            operation: "choose a job id (every id tried was taken)", path: incomingPath, errno: EEXIST)
    }

    /// Copies everything readable from `input` to `output` and flushes it. The copy takes the
    /// group of `incoming/` when it can, so a daemon in that group can read a file submitted by
    /// root or another member.
    private static func copy(
        from input: Int32, source: String, to output: Int32, destination: String, group directory: String
    ) throws {
        var dirStat = stat()
        if stat(directory, &dirStat) == 0 { _ = fchown(output, uid_t.max, dirStat.st_gid) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FS.error("read", source)
            }
            if count == 0 { break }
            var written = 0
            while written < count {
                let r = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                if r < 0 {
                    if errno == EINTR { continue }
                    throw FS.error("write", destination)
                }
                written += r
            }
        }
        guard fsync(output) == 0 else { throw FS.error("fsync", destination) }
    }
}
