import NN
import TensorCore
import XCTest

/// `Conv2d` on the direct 3x3 kernels against the same layer on im2col + GEMM: outputs, input
/// gradients and weight gradients agree to rounding, for a ResNet-sized batch. (Each path is
/// also checked against finite differences in LayerGradientTests and against PyTorch in the
/// model goldens.)
final class DirectConvolutionTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(Conv2d.useDirectKernel, "the direct kernel does not run on this CPU")
    }

    override func tearDown() {
        Conv2d.useDirectKernel = true
    }

    func run(_ conv: Conv2d, _ x: Tensor, _ dy: Tensor, direct: Bool) -> (y: Tensor, dx: Tensor, dw: Tensor) {
        Conv2d.useDirectKernel = direct
        conv.weight.grad = Tensor(shape: conv.weight.value.shape)
        let y = conv.forward(x, mode: .training)
        let dx = conv.backward(dy, parameterGradients: true)
        return (y, dx, conv.weight.grad)
    }

    func assertClose(_ a: Tensor, _ b: Tensor, _ what: String) {
        XCTAssertEqual(a.shape, b.shape, what)
        let scale = max(1, b.array.map(abs).max() ?? 0)
        let worst = zip(a.array, b.array).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(what): largest difference \(worst)")
    }

    func testDirectKernelMatchesGEMMPath() {
        var rng = RNG(seed: 77)
        // Both strides run forward, input and weight gradient on the direct kernels.
        for (cin, cout, hw, stride, bias) in [
            (3, 16, 32, 1, true), (16, 32, 16, 1, false), (64, 64, 8, 1, false),
            (5, 7, 9, 1, true), (16, 32, 32, 2, false), (5, 7, 9, 2, true),
        ] {
            let conv = Conv2d(cin, cout, kernel: 3, stride: stride, padding: 1, bias: bias, rng: &rng)
            let x = Tensor.normal(shape: [6, cin, hw, hw], std: 1, rng: &rng)
            let dy = Tensor.normal(shape: conv.outputShape(for: x.shape), std: 1, rng: &rng)
            let gemm = run(conv, x, dy, direct: false)
            let direct = run(conv, x, dy, direct: true)
            assertClose(direct.y, gemm.y, "\(cin)->\(cout) \(hw)x\(hw) output")
            assertClose(direct.dx, gemm.dx, "\(cin)->\(cout) \(hw)x\(hw) input gradient")
            assertClose(direct.dw, gemm.dw, "\(cin)->\(cout) \(hw)x\(hw) weight gradient")
        }
    }
}
