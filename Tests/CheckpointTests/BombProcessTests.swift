import Checkpoint
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 14's bombs, refused by `rrmd inspect` (the path the daemon takes too) in a separate
/// process whose peak resident memory is measured by the kernel (wait4's rusage), under
/// `ulimit -v` 1 GiB: each must end with exit status 1 and a reason, never a signal, within
/// 64 MiB above what inspecting a small valid checkpoint takes.
final class BombProcessTests: XCTestCase {
    private static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rrmd").path
    private var directory: URL!

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("the rrmd executable is not at \(Self.binary); build it with `swift build --build-tests`")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("rrmd-bombs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Runs `rrmd inspect file` under `ulimit -v` 1 GiB; returns how it ended, its output and
    /// its peak resident set in bytes.
    private func inspect(_ file: String) throws -> (exited: Bool, status: Int32, output: String, peak: Int) {
        let log = directory.appendingPathComponent("out-\(UUID().uuidString).txt").path
        // ulimit then exec: the shell becomes rrmd, so the rusage below is rrmd's own.
        let script = "ulimit -v 1048576; exec \"$0\" inspect \"$1\" > \"$2\" 2>&1"
        let args = ["/bin/sh", "-c", script, Self.binary, file, log]
        var pid: pid_t = 0
        let argv = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
        XCTAssertEqual(spawned, 0, "posix_spawn")
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS by hand (the macros are not imported into Swift).
        let exited = status & 0x7f == 0
        return (exited, (status >> 8) & 0xff, output, usage.ru_maxrss * 1024)
    }

    private func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testBombsAreRefusedInBoundedMemory() throws {
        let valid = sampleCheckpoint().serialized()
        let baseline = try inspect(try write(valid, "valid.safetensors"))
        // A valid safetensors file without rrm.* metadata: read whole, then reported as not a model.
        XCTAssertTrue(baseline.exited && baseline.output.contains("rrm.dataset"), baseline.output)
        let blocks4GiB = 32768  // 128 KiB RLE blocks
        let bombs: [(name: String, bytes: [UInt8], reason: String)] = [
            // Issue 14's file: 4 GiB of zeros, no content size, no checksum; its header (length 0) is invalid.
            ("zeros.safetensors.zst", zeroBombFrame(blocks: blocks4GiB), "invalid header"),
            // A content size just under the 4 GiB cap, so the frame header alone does not refuse it.
            ("declared.safetensors.zst", zeroBombFrame(blocks: blocks4GiB, contentSize: (4 << 30) - 1), "invalid header"),
            // A valid checkpoint, then 4 GiB of zeros: far past what its own header declares.
            ("tail.safetensors.zst", zeroBombFrame(blocks: blocks4GiB, prefix: valid), "its own safetensors header declares"),
        ]
        for bomb in bombs {
            XCTAssertLessThan(bomb.bytes.count, 200_000, bomb.name)
            let result = try inspect(try write(bomb.bytes, bomb.name))
            XCTAssertTrue(result.exited, "\(bomb.name) ended by a signal: \(result.output)")
            XCTAssertEqual(result.status, 1, "\(bomb.name): \(result.output)")
            XCTAssertTrue(result.output.contains(bomb.reason), "\(bomb.name): \(result.output)")
            XCTAssertLessThanOrEqual(result.peak, baseline.peak + 64 << 20,
                                     "\(bomb.name): peak \(result.peak >> 20) MiB against \(baseline.peak >> 20) MiB for a valid file")
            print("bomb \(bomb.name): refused at peak \(result.peak >> 20) MiB resident (valid file: \(baseline.peak >> 20) MiB)")
        }
    }

    /// A genuinely valid checkpoint too large for the memory the process may use (1.5 GiB of
    /// zeros in one tensor, under `ulimit -v` 1 GiB) is refused with a reason before the
    /// allocation that would otherwise stop rrmd with SIGABRT.
    func testACheckpointLargerThanTheMemoryLimitIsATypedError() throws {
        let bytes = 3 << 29  // 1.5 GiB
        var header = Array("{\"t\":{\"dtype\":\"F32\",\"shape\":[\(bytes / 4)],\"data_offsets\":[0,\(bytes)]}}".utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var prefix: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { prefix += $0 }
        prefix += header
        // The header in a raw block, then exactly the 1.5 GiB of data as zeros in RLE blocks.
        let frame = zeroBombFrame(blocks: bytes / (128 << 10), prefix: prefix)
        let result = try inspect(try write(frame, "large.safetensors.zst"))
        XCTAssertTrue(result.exited, "ended by a signal: \(result.output)")
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("MiB of memory but only"), result.output)
    }
}
