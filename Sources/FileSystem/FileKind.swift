import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What kind of directory entry a file is, from its `stat` mode.
public enum FileKind: Equatable, Sendable {
    /// The kinds `stat` distinguishes (`unknown` for any other).
    case regular, directory, symlink, fifo, socket, characterDevice, blockDevice, unknown

    /// The kind `mode` (a `st_mode`) describes.
    public init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFLNK: self = .symlink
        case S_IFIFO: self = .fifo
        case S_IFSOCK: self = .socket
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        default: self = .unknown
        }
    }

    /// The kind in words, for error messages ("a FIFO (named pipe)").
    public var phrase: String {
        switch self {
        case .regular: return "a regular file"
        case .directory: return "a directory"
        case .symlink: return "a symbolic link"
        case .fifo: return "a FIFO (named pipe)"
        case .socket: return "a socket"
        case .characterDevice: return "a character device"
        case .blockDevice: return "a block device"
        case .unknown: return "a special file of unknown type"
        }
    }
}
