import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The daemon's exclusive hold on a spool (`flock` on `<root>/.lock`), so a second `rrmd serve`
/// on the same spool stops at start-up instead of "recovering" the first one's jobs under it.
/// The kernel releases it when the process ends, however it ends; `release()` or deinit earlier.
public final class SpoolLock {
    /// `<root>/.lock`.
    public let path: String
    private var fd: Int32

    fileprivate init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Gives the spool up.
    public func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit { release() }
}

extension Spool {
    /// Takes the spool for this process, or throws `SpoolError.busy` naming the process that
    /// holds it. Call it before `recover()`; keep the lock for the daemon's lifetime.
    public func lock() throws -> SpoolLock {
        try layout.create()
        let path = layout.root.path + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw FS.error("open lock file", path) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            var holder = [UInt8](repeating: 0, count: 32)
            let count = read(fd, &holder, holder.count)
            close(fd)
            guard code == EWOULDBLOCK else { throw FS.error("lock", path, code) }
            let pid = Int32(
                String(decoding: holder[..<max(0, count)], as: UTF8.self).trimmingCharacters(
                    in: .whitespacesAndNewlines))
            throw SpoolError.busy(path: path, pid: pid)
        }
        // The pid is for the message a second daemon prints; the lock itself is the flock.
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = write(fd, text, text.count) }
        return SpoolLock(path: path, fd: fd)
    }
}
