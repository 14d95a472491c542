import Checkpoint
import Foundation
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Issue 14's bombs and oversized requests, refused by `rrmd` in a separate process whose peak
/// resident memory is measured by the kernel (wait4's rusage), under `ulimit -v` 1 GiB: each
/// must end with exit status 1 and a reason, never a signal. Bombs go through `rrmd inspect`
/// (the path the daemon takes too) and must stay within 64 MiB above what inspecting a small
/// valid checkpoint takes.
final class MemoryLimitProcessTests: XCTestCase {
    private static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("rrmd").path
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
        try rrmd(["inspect", file])
    }

    /// Runs `rrmd arguments...` under `ulimit -v` 1 GiB, as `inspect` does.
    private func rrmd(_ arguments: [String]) throws -> (exited: Bool, status: Int32, output: String, peak: Int) {
        let log = directory.appendingPathComponent("out-\(UUID().uuidString).txt").path
        // ulimit then exec: the shell becomes rrmd, so the rusage below is rrmd's own.
        let script = "ulimit -v 1048576; log=\"$1\"; shift; exec \"$0\" \"$@\" > \"$log\" 2>&1"
        let args = ["/bin/sh", "-c", script, Self.binary, log] + arguments
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
            (
                "declared.safetensors.zst", zeroBombFrame(blocks: blocks4GiB, contentSize: (4 << 30) - 1),
                "invalid header"
            ),
            // A valid checkpoint, then 4 GiB of zeros: far past what its own header declares.
            (
                "tail.safetensors.zst", zeroBombFrame(blocks: blocks4GiB, prefix: valid),
                "its own safetensors header declares"
            ),
        ]
        for bomb in bombs {
            XCTAssertLessThan(bomb.bytes.count, 200_000, bomb.name)
            let result = try inspect(try write(bomb.bytes, bomb.name))
            XCTAssertTrue(result.exited, "\(bomb.name) ended by a signal: \(result.output)")
            XCTAssertEqual(result.status, 1, "\(bomb.name): \(result.output)")
            XCTAssertTrue(result.output.contains(bomb.reason), "\(bomb.name): \(result.output)")
            XCTAssertLessThanOrEqual(
                result.peak, baseline.peak + 64 << 20,
                "\(bomb.name): peak \(result.peak >> 20) MiB against \(baseline.peak >> 20) MiB for a valid file")
            print(
                "bomb \(bomb.name): refused at peak \(result.peak >> 20) MiB resident (valid file: "
                    + "\(baseline.peak >> 20) MiB)"
            )
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

    /// A small file whose rrm.* metadata describes an enormous network (resnet18 ×64 for
    /// 4096x4096 images: 45 G parameters) is refused from the metadata alone: the network is
    /// counted, not built.
    func testMetadataDescribingAHugeNetworkIsRefusedUnbuilt() throws {
        let baseline = try inspect(try write(sampleCheckpoint().serialized(), "valid.safetensors"))
        let metadata = [
            "rrm.arch": "resnet18", "rrm.width": "64", "rrm.dataset": "cifar10", "rrm.num_classes": "100000",
            "rrm.input_shape": "3,4096,4096", "rrm.mean": "0.5,0.5,0.5", "rrm.std": "0.25,0.25,0.25",
        ]
        let file = SafeTensors(sampleCheckpoint().entries, metadata: metadata).serialized()
        let result = try inspect(try write(file, "huge-metadata.safetensors"))
        XCTAssertTrue(result.exited, "ended by a signal: \(result.output)")
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(
            result.output.contains("describes resnet18 with") && result.output.contains("but the file holds only"),
            result.output)
        XCTAssertLessThanOrEqual(
            result.peak, baseline.peak + 64 << 20, "peak \(result.peak >> 20) MiB against \(baseline.peak >> 20) MiB")
    }

    /// A training run whose batch (from the command line, as a batch size from the daemon's
    /// configuration) would need more memory than the limit is refused before it starts, with
    /// the estimate and what to change.
    func testATrainingRunTooLargeForTheLimitIsRefused() throws {
        let fixtures = TestFixtures.dataDirectory
        let out = directory.appendingPathComponent("never.safetensors").path
        let result = try rrmd([
            "train", "--arch", "resnet20", "--width", "8", "--dataset", "digits", "--data-dir", fixtures,
            "--epochs", "1", "--batch-size", "1024", "--threads", "1", "--out", out,
        ])
        XCTAssertTrue(result.exited, "ended by a signal: \(result.output)")
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("training resnet20 ×8.0 with batches of 1024 needs about"), result.output)
        XCTAssertTrue(result.output.contains("lower the batch size"), result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// A gzipped IDX file whose header declares 1.3 million 28x28 images (4 GiB as floats) in a
    /// few bytes is refused from its header, before the images tensor is allocated.
    func testADatasetHeaderDeclaringTooMuchIsRefused() throws {
        let data = directory.appendingPathComponent("mnist")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        func idx(_ dims: [UInt32], payload: Int) -> [UInt8] {
            var bytes: [UInt8] = [0, 0, 0x08, UInt8(dims.count)]
            for d in dims { withUnsafeBytes(of: d.bigEndian) { bytes += $0 } }
            return bytes + [UInt8](repeating: 0, count: payload)
        }
        func gzip(_ bytes: [UInt8], _ name: String) throws {
            let plain = data.appendingPathComponent(name)
            try Data(bytes).write(to: plain)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/gzip")
            p.arguments = ["-f", plain.path]
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
        }
        try gzip(idx([1_300_000, 28, 28], payload: 784), "train-images-idx3-ubyte")
        try gzip(idx([1_300_000], payload: 10), "train-labels-idx1-ubyte")
        try gzip(idx([10, 28, 28], payload: 7840), "t10k-images-idx3-ubyte")
        try gzip(idx([10], payload: 10), "t10k-labels-idx1-ubyte")
        let result = try rrmd([
            "train", "--arch", "mlp", "--dataset", "mnist", "--data-dir", data.path, "--epochs", "1",
            "--out", directory.appendingPathComponent("never.safetensors").path,
        ])
        XCTAssertTrue(result.exited, "ended by a signal: \(result.output)")
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(
            result.output.contains("1300000 images of 28x28, as the header declares")
                && result.output.contains("needs about"), result.output)
    }
}
