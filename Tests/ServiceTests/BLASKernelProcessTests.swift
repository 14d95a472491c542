import Foundation
import Kernels
import XCTest

/// `rrmd` picks OpenBLAS's Haswell kernel on AVX-512 CPUs by itself (the variable is read only
/// when the library loads, so the program restarts once), and leaves an operator's choice alone.
final class BLASKernelProcessTests: XCTestCase {
    private static let binary: String =
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rrmd").path

    /// Runs `rrmd bench` on its cheapest workload with `environment` and returns the kernel name
    /// the benchmark reports.
    private func reportedCore(environment: [String: String]) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("the rrmd executable is not at \(Self.binary); build it with `swift build --build-tests`")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["bench", "--only", "resnet20_infer", "--repeats", "1", "--min-seconds", "0", "--threads", "1", "--json"]
        p.environment = environment
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(object["openblas_core"] as? String)
    }

    func testHaswellKernelIsChosenOnAVX512AndAnExplicitChoiceWins() throws {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: BLASKernel.variable)
        let chosen = try reportedCore(environment: env)
        if BLASKernel.cpuHasAVX512 {
            XCTAssertEqual(chosen, "Haswell")
        } else {
            XCTAssertNotEqual(chosen, "unknown")
        }
        env[BLASKernel.variable] = "Sandybridge"  // an explicit choice is respected
        XCTAssertEqual(try reportedCore(environment: env), "Sandybridge")
    }
}
