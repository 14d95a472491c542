import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a system tool with its output discarded; its exit status, or -1 when it cannot start.
public func runQuietly(_ tool: String, _ arguments: [String]) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = arguments
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return -1 }
    p.waitUntilExit()
    return p.terminationStatus
}

/// Writes zeros to `path` until the filesystem refuses; returns the errno that stopped it. A
/// short write takes the last bytes there are, so the disk is full to the byte.
public func fillDisk(_ path: String) -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    let chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 { return errno }
        if n == 0 { return 0 }
    }
}
