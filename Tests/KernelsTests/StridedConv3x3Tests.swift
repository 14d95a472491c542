import Kernels
import XCTest

/// `StridedConv3x3` (3x3, stride 2, padding 1) against a plain loop, for even and odd sizes,
/// 1-pixel images and channel counts that do not fill a tile.
final class StridedConv3x3Tests: XCTestCase {
    let shapes: [(cin: Int, cout: Int, h: Int, w: Int)] = [
        (1, 1, 1, 1), (16, 32, 32, 32), (32, 64, 16, 16), (3, 5, 7, 9), (2, 9, 2, 3), (4, 8, 50, 6),
    ]

    override func setUpWithError() throws {
        try XCTSkipUnless(
            DirectConv3x3.supportsAVX512(
                String(decoding: FileManager.default.contents(atPath: "/proc/cpuinfo") ?? Data(), as: UTF8.self)),
            "this CPU has no AVX-512; the direct kernels are never used here")
    }

    func testMatchesPlainStrideTwoConvolution() {
        for s in shapes {
            let plan = StridedConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            let oh = plan.outHeight
            let ow = plan.outWidth
            XCTAssertEqual(oh, (s.h + 2 - 3) / 2 + 1)
            XCTAssertEqual(ow, (s.w + 2 - 3) / 2 + 1)
            let input = (0..<(s.cin * s.h * s.w)).map { Float(sin(Double($0) * 0.71 + 0.3)) }
            let w = (0..<(s.cout * s.cin * 9)).map { Float(cos(Double($0) * 0.53)) }
            let bias = (0..<s.cout).map { Float($0) * 0.25 - 1 }
            var padded = [Float](repeating: .nan, count: plan.paddedInputCount)
            var result = [Float](repeating: .nan, count: plan.paddedOutputCount)
            var out = [Float](repeating: .nan, count: s.cout * oh * ow)
            plan.pad(input, &padded)
            XCTAssertFalse(padded.contains { $0.isNaN }, "\(s): pad left a float unwritten")
            let packed = w.withUnsafeBufferPointer { plan.packForward($0.baseAddress!) }
            plan.run(padded, packed, &result)
            plan.unpad(result, bias: bias, &out)
            for co in 0..<s.cout {
                for y in 0..<oh {
                    for x in 0..<ow {
                        var sum = Double(bias[co])
                        var magnitude = Double(abs(bias[co]))
                        for ci in 0..<s.cin {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let iy = 2 * y + ky - 1
                                    let ix = 2 * x + kx - 1
                                    guard iy >= 0, iy < s.h, ix >= 0, ix < s.w else { continue }
                                    let term =
                                        Double(w[(co * s.cin + ci) * 9 + ky * 3 + kx])
                                        * Double(input[(ci * s.h + iy) * s.w + ix])
                                    sum += term
                                    magnitude += abs(term)
                                }
                            }
                        }
                        let got = out[(co * oh + y) * ow + x]
                        let tol = 4 * Float.ulpOfOne * (Float(magnitude) + 1)
                        if !(abs(got - Float(sum)) <= tol) {
                            XCTFail("\(s): output (\(co), \(y), \(x)) is \(got), expected \(sum) ± \(tol)")
                            return
                        }
                    }
                }
            }
        }
    }

    /// dx[ci][p][q] = sum over (co, y, x, ky, kx) with 2y + ky - 1 = p and 2x + kx - 1 = q of
    /// W[co][ci][ky][kx] * dy[co][y][x], the adjoint of the forward above.
    func testInputGradientMatchesPlainAdjoint() {
        for s in shapes {
            let plan = StridedConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            let oh = plan.outHeight
            let ow = plan.outWidth
            let dy = (0..<(s.cout * oh * ow)).map { Float(sin(Double($0) * 0.41 + 1.1)) }
            let w = (0..<(s.cout * s.cin * 9)).map { Float(cos(Double($0) * 0.29 + 0.2)) }
            var want = [Double](repeating: 0, count: s.cin * s.h * s.w)
            var magnitude = want
            for co in 0..<s.cout {
                for ci in 0..<s.cin {
                    for y in 0..<oh {
                        for x in 0..<ow {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let p = 2 * y + ky - 1
                                    let q = 2 * x + kx - 1
                                    guard p >= 0, p < s.h, q >= 0, q < s.w else { continue }
                                    let term =
                                        Double(w[(co * s.cin + ci) * 9 + ky * 3 + kx])
                                        * Double(dy[(co * oh + y) * ow + x])
                                    want[(ci * s.h + p) * s.w + q] += term
                                    magnitude[(ci * s.h + p) * s.w + q] += abs(term)
                                }
                            }
                        }
                    }
                }
            }
            var padded = [Float](repeating: .nan, count: plan.paddedGradientCount)
            var scratch = [Float](repeating: .nan, count: plan.phaseResultCount)
            var dx = [Float](repeating: .nan, count: s.cin * s.h * s.w)
            plan.padGradient(dy, &padded)
            XCTAssertFalse(padded.contains { $0.isNaN }, "\(s): padGradient left a float unwritten")
            let weights = w.withUnsafeBufferPointer { plan.packInputGradient($0.baseAddress!) }
            plan.inputGradient(padded, weights: weights, offsets: plan.inputGradientOffsets(), scratch: &scratch, &dx)
            assertWithinUlps(dx, want, magnitude: magnitude, ulps: 4, "\(s): dx")
        }
    }

    /// dW[co][ci][ky][kx] = sum over images and outputs of dy[co][y][x] * in[ci][2y + ky - 1][2x + kx - 1],
    /// for one image and a group of three, read from buffers with a gap of NaN after each image.
    func testWeightGradientMatchesPlainSum() {
        for s in shapes {
            let plan = StridedConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            let oh = plan.outHeight
            let ow = plan.outWidth
            for images in [1, 3] {
                let input = (0..<(images * s.cin * s.h * s.w)).map { Float(sin(Double($0) * 0.37 + 0.5)) }
                let dy = (0..<(images * s.cout * oh * ow)).map { Float(cos(Double($0) * 0.61 + 0.1)) }
                let plain = plainWeightGradient(
                    input: input, dy: dy, images: images, inChannels: s.cin, outChannels: s.cout,
                    height: s.h, width: s.w, stride: 2)
                let want = plain.sum.map { $0 + 1 }
                let magnitude = plain.magnitude  // dW accumulates from 1
                let inputStride = plan.paddedInputCount + 7
                let gradientStride = plan.paddedGradientCount + 2
                let inputs = paddedEach(
                    input, count: images, imageSize: s.cin * s.h * s.w, stride: inputStride, plan.pad)
                let grads = paddedEach(
                    dy, count: images, imageSize: s.cout * oh * ow, stride: gradientStride, plan.padGradient)
                var dW = [Float](repeating: 1, count: want.count)  // accumulates: starts from 1
                plan.accumulateWeightGradient(
                    paddedInputs: inputs, inputStride: inputStride, paddedGradients: grads,
                    gradientStride: gradientStride, images: images, into: &dW)
                assertWithinUlps(dW, want, magnitude: magnitude, ulps: 4, "\(s) x \(images) images: dW")
            }
        }
    }
}
