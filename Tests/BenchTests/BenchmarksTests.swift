import Bench
import XCTest

/// `rrmd bench`'s harness: the workloads run and are counted as the PyTorch peers count them.
final class BenchmarksTests: XCTestCase {
    /// The bench workloads run and report positive rates (tiny timing budget).
    func testBenchWorkloadsRun() throws {
        let r = try Benchmarks.run("resnet20_infer", timer: BenchTimer(repeats: 1, minSeconds: 0.01, warmup: 1))
        XCTAssertGreaterThan(r.imagesPerSecond, 0)
        XCTAssertEqual(r.forwardFLOPsPerImage, 81_102_080, "ResNet-20 FLOPs as the peers count them")
        XCTAssertEqual(Benchmarks.vggSmall().forwardFLOPsPerImage / 1_000_000, 230)
    }
}
