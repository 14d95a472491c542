import CInotifyTools
import Foundation

/// libinotifytools' process-wide state: one inotify descriptor and static event buffers. This
/// enum keeps it to one owner at a time and sets it up and tears it down cleanly.
enum InotifySession {
    private static let owner = LockedBox<String?>(nil)

    /// Reserves the library for a watcher of `directory`.
    static func claim(for directory: String) throws {
        var taken: String?
        owner.withLock { current in
            if let current { taken = current } else { current = directory }
        }
        if let taken { throw SpoolWatcherError.alreadyWatching(other: taken) }
    }

    /// Gives the library back.
    static func release() { owner.value = nil }

    /// Initialises the library and watches `directory`; returns the watch descriptor.
    static func attach(_ directory: String) -> Result<Int32, SpoolWatcherError> {
        guard inotifytools_initialize() != 0 else {
            return .failure(.watchFailed(directory: directory, reason: errorText(inotifytools_error())))
        }
        // IN_ONLYDIR: refuse (rather than silently watch) a path that turned into a file.
        let mask = Int32(bitPattern: UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR))
        guard inotifytools_watch_file(directory, mask) != 0 else {
            let error = inotifytools_error()
            inotifytools_cleanup()
            if error == ENOENT { return .failure(.directoryMissing(directory)) }
            if error == ENOTDIR { return .failure(.notADirectory(directory)) }
            return .failure(.watchFailed(directory: directory, reason: errorText(error)))
        }
        let wd = inotifytools_wd_from_filename(directory.hasSuffix("/") ? directory : directory + "/")
        return .success(wd > 0 ? wd : inotifytools_wd_from_filename(directory))
    }

    /// Removes the watch and shuts the library down. With `wd`, first reads up to the kernel's
    /// IN_IGNORED for it: libinotifytools keeps unread events in static buffers that survive
    /// `inotifytools_cleanup`, and a later session would otherwise be handed this one's leftovers.
    static func detach(wd: Int32?) {
        if let wd, inotifytools_remove_watch_by_wd(wd) != 0 {
            for _ in 0..<3 {
                guard let event = inotifytools_next_event(SpoolWatcher.pollSeconds) else { continue }
                if event.pointee.wd == wd && event.pointee.mask & UInt32(IN_IGNORED) != 0 { break }
            }
        }
        inotifytools_cleanup()
    }

    private static func errorText(_ error: Int32) -> String {
        error == 0 ? "unknown error" : String(cString: strerror(error))
    }
}
