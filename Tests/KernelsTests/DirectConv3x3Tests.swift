import Kernels
import XCTest

/// `DirectConv3x3` against a plain six-loop convolution, for shapes that exercise every edge of
/// the padded-flat layout: 1-pixel images, widths that are not multiples of 16, output channels
/// that do not fill a tile, one input channel, and the input-gradient weight order.
final class DirectConv3x3Tests: XCTestCase {
    let shapes: [(cin: Int, cout: Int, h: Int, w: Int)] = [
        (1, 1, 1, 1), (3, 16, 32, 32), (16, 16, 8, 8), (5, 13, 7, 9), (64, 64, 8, 8),
        (2, 8, 3, 17), (16, 3, 5, 5), (1, 9, 16, 16), (7, 24, 2, 50),
    ]

    override func setUpWithError() throws {
        try XCTSkipUnless(
            DirectConv3x3.supportsAVX512(
                String(decoding: FileManager.default.contents(atPath: "/proc/cpuinfo") ?? Data(), as: UTF8.self)),
            "this CPU has no AVX-512; the direct kernel is never used here")
    }

    /// out[co][y][x] = bias[co] + sum w(co, ci, ky, kx) * in[ci][y + ky - 1][x + kx - 1].
    func reference(
        _ input: [Float], _ s: (cin: Int, cout: Int, h: Int, w: Int), bias: [Float]?,
        weight: (Int, Int, Int) -> Float
    ) -> (out: [Float], magnitude: [Float]) {
        var out = [Float](repeating: 0, count: s.cout * s.h * s.w)
        var mag = out
        for co in 0..<s.cout {
            for y in 0..<s.h {
                for x in 0..<s.w {
                    var sum = Double(bias?[co] ?? 0)
                    var abs = Double(Swift.abs(bias?[co] ?? 0))
                    for ci in 0..<s.cin {
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let iy = y + ky - 1
                                let ix = x + kx - 1
                                guard iy >= 0, iy < s.h, ix >= 0, ix < s.w else { continue }
                                let term =
                                    Double(weight(co, ci, ky * 3 + kx)) * Double(input[(ci * s.h + iy) * s.w + ix])
                                sum += term
                                abs += Swift.abs(term)
                            }
                        }
                    }
                    out[(co * s.h + y) * s.w + x] = Float(sum)
                    mag[(co * s.h + y) * s.w + x] = Float(abs)
                }
            }
        }
        return (out, mag)
    }

    /// Runs pad, run and unpad the way `Conv2d` does, on buffers pre-filled with NaN so a float
    /// the kernel reads without `pad` having written it shows up in the result.
    func direct(_ plan: DirectConv3x3, _ input: [Float], _ packed: [Float], bias: [Float]?) -> [Float] {
        var padded = [Float](repeating: .nan, count: plan.paddedInputCount)
        var result = [Float](repeating: .nan, count: plan.paddedOutputCount)
        var out = [Float](repeating: .nan, count: plan.outChannels * plan.height * plan.width)
        plan.pad(input, &padded)
        plan.run(padded, packed, &result)
        if let bias { plan.unpad(result, bias: bias, &out) } else { plan.unpad(result, bias: nil, &out) }
        return out
    }

    func values(_ n: Int, seed: Int) -> [Float] {
        (0..<n).map { Float(sin(Double($0 * 7 + seed) * 0.37)) }
    }

    /// Sums in a different order: within 4 ulps of the sum of absolute terms.
    func assertClose(_ got: [Float], _ want: (out: [Float], magnitude: [Float]), _ what: String) {
        assertWithinUlps(got, want.out.map(Double.init), magnitude: want.magnitude.map(Double.init), ulps: 4, what)
    }

    func testForwardMatchesPlainConvolution() {
        for s in shapes {
            let plan = DirectConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            let input = values(s.cin * s.h * s.w, seed: 1)
            let w = values(s.cout * s.cin * 9, seed: 2)
            let bias = values(s.cout, seed: 3)
            let packed = w.withUnsafeBufferPointer { plan.packForward($0.baseAddress!) }
            let weight = { (co: Int, ci: Int, tap: Int) in w[(co * s.cin + ci) * 9 + tap] }
            assertClose(
                direct(plan, input, packed, bias: bias), reference(input, s, bias: bias, weight: weight),
                "\(s) with bias")
            assertClose(direct(plan, input, packed, bias: nil), reference(input, s, bias: nil, weight: weight), "\(s)")
        }
    }

    /// The input gradient of a layer `W [cout', cin', 3, 3]` is this convolution of dy with
    /// cin = cout', cout = cin' and the window flipped.
    func testInputGradientWeightsAreFlippedAndTransposed() {
        for s in shapes {
            let plan = DirectConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            let forwardWeights = values(s.cin * s.cout * 9, seed: 4)  // [cin][cout][3][3]
            let dy = values(s.cin * s.h * s.w, seed: 5)
            let packed = forwardWeights.withUnsafeBufferPointer { plan.packInputGradient($0.baseAddress!) }
            let want = reference(dy, s, bias: nil) { co, ci, tap in forwardWeights[(ci * s.cout + co) * 9 + (8 - tap)] }
            assertClose(direct(plan, dy, packed, bias: nil), want, "\(s)")
        }
    }

    /// dW[co][ci][tap] = sum over images and pixels of dy[co][y][x] * in[ci][y + ky - 1][x + kx - 1],
    /// for groups of one and several images.
    func testWeightGradientMatchesPlainSum() {
        for s in shapes {
            let plan = DirectConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            for images in [1, 3] {
                let input = values(images * s.cin * s.h * s.w, seed: 7)
                let dy = values(images * s.cout * s.h * s.w, seed: 8)
                let want = plainWeightGradient(
                    input: input, dy: dy, images: images, inChannels: s.cin, outChannels: s.cout,
                    height: s.h, width: s.w, stride: 1)
                // Each image padded as the forward and input-gradient passes pad it, in buffers
                // with a gap of NaN between images: the kernel must not read the gaps.
                let gradientPlan = plan.inputGradientPlan
                let inputStride = plan.paddedInputCount + 5
                let gradientStride = gradientPlan.paddedInputCount + 3
                let inputs = paddedEach(
                    input, count: images, imageSize: s.cin * s.h * s.w, stride: inputStride, plan.pad)
                let grads = paddedEach(
                    dy, count: images, imageSize: s.cout * s.h * s.w, stride: gradientStride, gradientPlan.pad)
                var dW = [Float](repeating: 1, count: want.sum.count)  // accumulates: starts from 1
                plan.accumulateWeightGradient(
                    paddedInputs: inputs, inputStride: inputStride,
                    paddedGradients: grads, gradientStride: gradientStride, images: images, into: &dW)
                assertClose(
                    dW, (want.sum.map { Float($0) + 1 }, want.magnitude.map { Float($0) }), "\(s) x \(images) images")
            }
        }
    }

    /// Winograd F(2x2, 3x3) against the plain loop for every size it takes (grids that fit the
    /// image exactly and grids with ghost tiles past its right and bottom edges: MNIST's 28, 14
    /// and 7, odd sizes), for one image and for groups that do and do not fill `winogradGroup`,
    /// forward (with and without bias) and input-gradient weights. The output starts as NaN, so
    /// a real output left unwritten fails, and the check covers every float of it, so a ghost
    /// written over the next row fails too. Its transforms add up to 16 inputs and 9 products before rounding,
    /// so the bound is 32 ulps of the sum of absolute terms instead of 4 (a wrong transform is off
    /// by whole terms, far outside it).
    func testWinogradMatchesPlainConvolution() {
        let sizes: [(cin: Int, cout: Int, h: Int, w: Int)] = [
            (3, 16, 32, 32), (16, 16, 8, 8), (64, 64, 8, 8), (1, 9, 16, 16), (5, 13, 8, 16), (16, 32, 2, 32),
            (7, 3, 16, 8), (20, 20, 8, 8), (12, 4, 8, 16),
        ] + Self.ghostSizes
        for s in sizes {
            let plan = DirectConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            XCTAssertTrue(plan.usesWinograd, "\(s)")
            for images in [1, 2, 4] {
                let plane = s.h * s.w
                let input = values(images * s.cin * plane, seed: 11)
                let w = values(s.cout * s.cin * 9, seed: 12)
                let bias = values(s.cout, seed: 13)
                let stride = plan.paddedInputCount + 3
                let padded = paddedEach(input, count: images, imageSize: s.cin * plane, stride: stride, plan.pad)
                for (name, packed, weight, useBias) in [
                    (
                        "forward", w.withUnsafeBufferPointer { plan.packWinogradForward($0.baseAddress!) },
                        { (co: Int, ci: Int, tap: Int) in w[(co * s.cin + ci) * 9 + tap] }, true
                    ),
                    (
                        "input gradient", w.withUnsafeBufferPointer { plan.packWinogradInputGradient($0.baseAddress!) },
                        { (co: Int, ci: Int, tap: Int) in w[(ci * s.cout + co) * 9 + (8 - tap)] }, false
                    ),
                ] {
                    var scratch = [Float](repeating: .nan, count: plan.winogradScratchCount)
                    var out = [Float](repeating: .nan, count: images * s.cout * plane)
                    bias.withUnsafeBufferPointer { bp in
                        plan.runWinograd(
                            padded, paddedStride: stride, images: images, weights: packed, scratch: &scratch,
                            &out, outputStride: s.cout * plane, bias: useBias ? bp.baseAddress : nil)
                    }
                    for b in 0..<images {
                        let image = Array(input[(b * s.cin * plane)..<((b + 1) * s.cin * plane)])
                        let want = reference(image, s, bias: useBias ? bias : nil, weight: weight)
                        let got = Array(out[(b * s.cout * plane)..<((b + 1) * s.cout * plane)])
                        assertWithinUlps(
                            got, want.out.map(Double.init), magnitude: want.magnitude.map(Double.init), ulps: 32,
                            "\(s) \(name) image \(b) of \(images)")
                    }
                }
            }
        }
        // Grids with more than a third of ghost outputs, and wider than 16 tiles.
        for (h, w) in [(7, 9), (2, 8), (4, 4), (1, 16), (32, 34)] {
            XCTAssertFalse(DirectConv3x3(inChannels: 1, outChannels: 1, height: h, width: w).usesWinograd, "\(h)x\(w)")
        }
        let grid = { (n: Int) in
            DirectConv3x3(inChannels: 1, outChannels: 1, height: n, width: n).winogradGrid.map {
                [$0.tilesPerRow, $0.tileRows]
            }
        }
        XCTAssertEqual(grid(28), [16, 14])
        XCTAssertEqual(grid(14), [8, 8])
        XCTAssertEqual(grid(7), [4, 4])
    }

    /// Sizes whose Winograd grid runs past the image: 28 x 28 (14 of 16 tiles to a row), 14 x 14
    /// (7 of 8, and a ghost tile row), 7 x 7 and other odd sizes (half-ghost tiles), mixed.
    static let ghostSizes: [(cin: Int, cout: Int, h: Int, w: Int)] = [
        (1, 8, 28, 28), (16, 16, 14, 14), (32, 32, 7, 7), (5, 13, 7, 14), (13, 5, 28, 7), (3, 4, 27, 30),
    ]

    /// The Winograd weight gradient (F(3x3, 2x2)) against the plain sum, for groups smaller and
    /// larger than `winogradGradientGroup`, from buffers with gaps of NaN between images.
    func testWinogradWeightGradientMatchesPlainSum() {
        let sizes: [(cin: Int, cout: Int, h: Int, w: Int)] = [
            (3, 16, 32, 32), (16, 16, 8, 8), (64, 64, 8, 8), (1, 9, 16, 16), (5, 13, 8, 16), (7, 3, 16, 8),
        ] + Self.ghostSizes
        for s in sizes {
            let plan = DirectConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            let gradientPlan = plan.inputGradientPlan
            let plane = s.h * s.w
            for images in [1, 2, 5] {
                let input = values(images * s.cin * plane, seed: 21)
                let dy = values(images * s.cout * plane, seed: 22)
                let (want, magnitude) = plainWeightGradient(
                    input: input, dy: dy, images: images, inChannels: s.cin,
                    outChannels: s.cout, height: s.h, width: s.w, stride: 1)
                let inputStride = plan.paddedInputCount + 5
                let gradientStride = gradientPlan.paddedInputCount + 3
                let inputs = paddedEach(input, count: images, imageSize: s.cin * plane, stride: inputStride, plan.pad)
                let grads = paddedEach(
                    dy, count: images, imageSize: s.cout * plane, stride: gradientStride, gradientPlan.pad)
                var scratch = [Float](repeating: .nan, count: plan.winogradGradientScratchCount)
                var sums = [Float](repeating: 0, count: plan.winogradGradientSumCount)
                plan.accumulateWinogradWeightGradient(
                    paddedInputs: inputs, inputStride: inputStride, paddedGradients: grads,
                    gradientStride: gradientStride, images: images, scratch: &scratch, sums: &sums)
                var dW = [Float](repeating: 1, count: want.count)  // accumulates: starts from 1
                plan.finishWinogradWeightGradient(sums, into: &dW)
                assertWithinUlps(dW.map { $0 - 1 }, want, magnitude: magnitude, ulps: 32, "\(s) x \(images) images: dW")
            }
        }
    }

    /// `pad` and `padMaskedScaled` write every float of `paddedInputCount` and none after it
    /// (they move narrow rows as whole vectors, whose excess must stay inside), and hold the
    /// image's values: as many non-zeros, the same sum.
    func testPadWritesEveryFloatItCovers() {
        for s in shapes + Self.ghostSizes {
            let plan = DirectConv3x3(inChannels: s.cin, outChannels: s.cout, height: s.h, width: s.w)
            let image = values(s.cin * s.h * s.w, seed: 6)
            let mask = values(s.cin * s.h * s.w, seed: 7)
            let factors = (0..<s.cin).map { Float($0 + 2) }
            let masked = image.indices.map { (mask[$0] > 0 ? image[$0] : 0) * factors[$0 / (s.h * s.w)] }
            for (name, want) in [("pad", image), ("padMaskedScaled", masked)] {
                var padded = [Float](repeating: .nan, count: plan.paddedInputCount + 16)
                if name == "pad" {
                    plan.pad(image, &padded)
                } else {
                    plan.padMaskedScaled(image, mask: mask, factors: factors, &padded)
                }
                let inside = padded[..<plan.paddedInputCount]
                XCTAssertFalse(inside.contains { $0.isNaN }, "\(s) \(name)")
                XCTAssertTrue(padded[plan.paddedInputCount...].allSatisfy { $0.isNaN }, "\(s) \(name): wrote past the end")
                XCTAssertEqual(inside.filter { $0 != 0 }.count, want.filter { $0 != 0 }.count, "\(s) \(name)")
                XCTAssertEqual(
                    inside.reduce(0, +), want.reduce(0, +), accuracy: 1e-3 * Float(want.count), "\(s) \(name)")
            }
        }
    }

    func testCPUCheckNeedsEveryAVX512Subset() {
        let full = "processor\t: 0\nflags\t\t: fpu avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl\n"
        XCTAssertTrue(DirectConv3x3.supportsAVX512(full))
        XCTAssertFalse(DirectConv3x3.supportsAVX512(full.replacingOccurrences(of: " avx512bw", with: "")))
        XCTAssertFalse(DirectConv3x3.supportsAVX512("processor\t: 0\nflags\t\t: fpu avx2 fma\n"))
        XCTAssertFalse(DirectConv3x3.supportsAVX512(""))
    }
}
