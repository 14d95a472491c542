import Foundation
import Kernels

/// The process's peak resident memory, resettable so each benchmark workload reports its own.
public enum PeakMemory {
    /// Returns cached buffers to the system and restarts the kernel's high-water mark (`VmHWM`)
    /// at the current resident size (writing 5 to `/proc/self/clear_refs`, Linux 4.0+), so the
    /// next reading covers only what runs after this call.
    public static func reset() {
        Compute.releaseFreeMemory()
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return }
        _ = "5".withCString { write(fd, $0, 1) }
        close(fd)
    }

    /// Peak resident bytes since the last `reset` (or process start), or nil when the kernel
    /// does not say.
    public static func peakResidentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            // "VmHWM:    123456 kB"
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
        }
        return nil
    }
}
