import FileSystem
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Spool {
    /// Looks at `incoming/`: regular files come back in arrival order; symbolic links, FIFOs,
    /// sockets, devices and directories are refused — renamed, never opened or followed, into
    /// `failed/<job>/` with an `error.json` of kind `special-file`.
    ///
    /// Dotfiles, `*.tmp` and `*.part` are ignored (copies in progress). Only `lstat` is used on
    /// the entries. Creates the spool's directories when they are missing.
    public func scanIncoming() throws -> IncomingScan {
        try layout.create()
        var scan = IncomingScan()
        for name in try FS.list(incomingPath) where !SpoolNames.isIgnored(name) {
            let path = incomingPath + "/" + name
            let found: FS.Info
            do {
                guard let info = try FS.info(path) else {
                    // Gone since the listing (claimed by someone else, or removed): not an error,
                    // unless the name could not be spelled, which would hide the file forever.
                    if name.contains("\u{FFFD}") {
                        scan.problems.append(
                            .unusableName(
                                path: path,
                                reason: "the file name is not valid UTF-8, so rrmd cannot open it; rename it"))
                    }
                    continue
                }
                found = info
            } catch let error as SpoolError {
                scan.problems.append(error)
                continue
            }
            if found.kind == .regular {
                let (job, originalName) = SpoolNames.parseIncoming(name)
                scan.entries.append(
                    IncomingEntry(
                        name: name, job: job, originalName: originalName,
                        arrived: job?.date ?? found.modified, size: found.size,
                        modified: found.modified))
                continue
            }
            do {
                if let refused = try refuse(name: name, kind: found.kind) { scan.refused.append(refused) }
            } catch let error as SpoolError {
                scan.problems.append(error)
            }
        }
        scan.entries.sort(by: IncomingEntry.arrivalOrder)
        return scan
    }

    /// Moves the special file `incoming/<name>` to `failed/<job>/` without opening it: first into
    /// `work/<job>/` (exactly like a claim), then through the ordinary failure path, so a crash
    /// half-way leaves states `recover()` already handles. Nil when the entry vanished.
    func refuse(name: String, kind: FS.Kind) throws -> RefusedEntry? {
        // readlink reads the link itself; it never touches what the link points to.
        let linkTarget = kind == .symlink ? Self.readLink(incomingPath + "/" + name) : nil
        return try refuse(name: name, failure: SpoolFailure.specialFile(name: name, kind: kind, linkTarget: linkTarget))
    }

    /// Moves `entry` to `failed/<job>/` with `failure` without opening or reading it, e.g. a
    /// file larger than the daemon accepts, which is not worth hashing. Nil when it vanished.
    public func refuse(_ entry: IncomingEntry, failure: SpoolFailure) throws -> RefusedEntry? {
        try refuse(name: entry.name, failure: failure)
    }

    /// The shared path of the refusals: rename into `work/<job>/` exactly like a claim, then the
    /// ordinary failure path, so a crash half-way leaves states `recover()` already handles.
    private func refuse(name: String, failure: SpoolFailure) throws -> RefusedEntry? {
        let (preferred, _) = SpoolNames.parseIncoming(name)
        let from = incomingPath + "/" + name
        let job = try takeWorkDirectory(preferring: preferred)
        let directory = workPath(job)
        do {
            try FS.move(from, directory + "/" + SpoolNames.teacherName(for: name))
        } catch {
            try? FS.removeDirectory(directory)
            if case .system(_, _, ENOENT)? = error as? FileSystemError { return nil }
            throw error
        }
        do {
            try FS.syncDirectories(incomingPath, directory)
            try fail(job: job, failure: failure)
        } catch {
            // Back to incoming/, so the next scan tries again.
            putBack(job: job, teacher: SpoolNames.teacherName(for: name), as: name)
            throw error
        }
        return RefusedEntry(job: job, name: name, failure: failure)
    }

    /// The target of the symbolic link at `path`, or nil when it cannot be read.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
