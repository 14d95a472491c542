import Foundation
import Kernels
import XCTest

/// `rrmd` picks OpenBLAS's Haswell kernel on Zen 4 by itself (the variable is read only when the
/// library loads, so the program restarts once), keeps OpenBLAS's own choice elsewhere, and
/// leaves an operator's choice alone.
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
        p.arguments = [
            "bench", "--only", "resnet20_infer", "--repeats", "1", "--min-seconds", "0", "--threads", "1", "--json",
        ]
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

    func testHaswellKernelIsChosenOnZen4OnlyAndAnExplicitChoiceWins() throws {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: BLASKernel.variable)
        let chosen = try reportedCore(environment: env)
        if BLASKernel.changesKernelHere {
            XCTAssertEqual(chosen, "Haswell")
        } else {
            XCTAssertNotEqual(chosen, "unknown")
        }
        env[BLASKernel.variable] = "Sandybridge"  // an explicit choice is respected
        XCTAssertEqual(try reportedCore(environment: env), "Sandybridge")
    }

    func testTheRuleSelectsZen4Only() {
        func cpu(_ vendor: String, _ family: Int, _ flags: String) -> String {
            "processor\t: 0\nvendor_id\t: \(vendor)\ncpu family\t: \(family)\nflags\t\t: \(flags)\n\nprocessor\t: 1\n"
        }
        let avx512 = "fpu sse avx avx2 fma avx512f avx512bw"
        XCTAssertTrue(BLASKernel.prefersHaswellKernel(cpu("AuthenticAMD", 25, avx512)), "Zen 4")
        XCTAssertFalse(BLASKernel.prefersHaswellKernel(cpu("AuthenticAMD", 26, avx512)), "Zen 5: full-width AVX-512")
        XCTAssertFalse(
            BLASKernel.prefersHaswellKernel(cpu("AuthenticAMD", 25, "fpu avx avx2 fma")), "Zen 3: no AVX-512")
        XCTAssertFalse(BLASKernel.prefersHaswellKernel(cpu("GenuineIntel", 6, avx512)), "Intel")
        XCTAssertFalse(BLASKernel.prefersHaswellKernel(""), "no /proc/cpuinfo")
    }
}
