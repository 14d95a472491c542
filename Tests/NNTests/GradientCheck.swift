import NN
import TensorCore
import XCTest

/// Finite-difference gradient checking for layers.
///
/// The scalar checked is `L = sum(r * layer(x))` for a fixed random `r`, so dL/dy = r. Central
/// differences in Float32 with step `h`; each analytic value must agree within
/// `atol + rtol * max(|fd|, |analytic|)`. A step can cross a ReLU or max-pool kink inside a
/// composite block, which breaks the finite difference rather than the gradient; such a
/// coordinate shows up as an analytic gradient that jumps between `-h` and `+h` and is skipped,
/// but at most a quarter of the coordinates of any tensor may be skipped.
struct GradientCheck {
    var h: Float = 1e-2
    var atol: Float = 2e-3
    var rtol: Float = 2e-2
    var samplesPerTensor = 24

    /// Checks dL/dx and every parameter's gradient of `layer` at `x` in `mode`.
    func check(
        _ layer: Layer, input x: Tensor, mode: Mode, seed: UInt64 = 1,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        var rng = RNG(seed: seed)
        let y0 = layer.forward(x, mode: mode)
        let r = Tensor.normal(shape: y0.shape, std: 1, rng: &rng)
        func loss(_ input: Tensor) -> Double {
            let y = layer.forward(input, mode: mode)
            let yv = y.array
            let rv = r.array
            var s = 0.0
            for i in 0..<yv.count { s += Double(yv[i]) * Double(rv[i]) }
            return s
        }
        // Analytic gradients (input first, then each parameter) from one forward + backward.
        func gradients(_ input: Tensor) -> [[Float]] {
            layer.zeroGradients()
            _ = layer.forward(input, mode: mode)
            let dx = layer.backward(r, parameterGradients: true)
            return [dx.array] + layer.namedParameters().map { $0.1.grad.array }
        }
        let analytic = gradients(x)
        XCTAssertEqual(analytic[0].count, x.count, "input gradient size", file: file, line: line)
        let params = layer.namedParameters()

        // Input gradient.
        var checks: [(String, Float, Float?)] = []
        for i in sampleIndices(x.count, &rng) {
            let fd = stableDifference(analytic: analytic[0][i]) { step in
                var xs = x
                xs[flat: i] += step
                return (loss(xs), gradients(xs)[0][i])
            }
            checks.append(("dL/dx[\(i)]", analytic[0][i], fd))
        }
        assertChecks(checks, "input", file: file, line: line)
        // Parameter gradients.
        for (k, (name, p)) in params.enumerated() {
            checks = []
            for i in sampleIndices(p.value.count, &rng) {
                let old = p.value[flat: i]
                let fd = stableDifference(analytic: analytic[k + 1][i]) { step in
                    p.value[flat: i] = old + step
                    defer { p.value[flat: i] = old }
                    return (loss(x), gradients(x)[k + 1][i])
                }
                checks.append(("dL/d\(name)[\(i)]", analytic[k + 1][i], fd))
            }
            assertChecks(checks, name, file: file, line: line)
        }
        let dx = Tensor(shape: x.shape, data: analytic[0])
        // Input-only backward gives the same dx and leaves parameter gradients alone.
        layer.zeroGradients()
        _ = layer.forward(x, mode: mode)
        let dxOnly = layer.backward(r, parameterGradients: false)
        XCTAssertEqual(dxOnly.array, dx.array, "input-only backward differs", file: file, line: line)
        for (name, p) in layer.namedParameters() {
            XCTAssertTrue(
                p.grad.array.allSatisfy { $0 == 0 }, "\(name) gradient touched by input-only backward", file: file,
                line: line)
        }
    }

    /// The central difference at step `h`, or nil when the analytic gradient itself changes
    /// between `-h` and `+h` (a kink lies within the step, so the difference means nothing).
    /// `evaluate(step)` returns the loss and this coordinate's analytic gradient at `+step`.
    func stableDifference(analytic: Float, _ evaluate: (Float) -> (Double, Float)) -> Float? {
        let (lp, gp) = evaluate(h)
        let (lm, gm) = evaluate(-h)
        let tol = atol + rtol * abs(analytic)
        if abs(gp - analytic) > tol || abs(gm - analytic) > tol { return nil }
        return Float((lp - lm) / Double(2 * h))
    }

    /// Asserts each (analytic, finite difference) pair agrees and few were skipped as kinks.
    func assertChecks(_ checks: [(String, Float, Float?)], _ tensor: String, file: StaticString, line: UInt) {
        let skipped = checks.filter { $0.2 == nil }.count
        XCTAssertLessThanOrEqual(
            4 * skipped, checks.count, "\(tensor): \(skipped) of \(checks.count) finite differences unstable",
            file: file, line: line)
        for (what, an, fd) in checks {
            if let fd { assertClose(fd, an, what, file: file, line: line) }
        }
    }

    func sampleIndices(_ n: Int, _ rng: inout RNG) -> [Int] {
        if n <= samplesPerTensor { return Array(0..<n) }
        return (0..<samplesPerTensor).map { _ in rng.below(n) }
    }

    func assertClose(_ fd: Float, _ an: Float, _ what: String, file: StaticString, line: UInt) {
        let tol = atol + rtol * max(abs(fd), abs(an))
        XCTAssertLessThanOrEqual(
            abs(fd - an), tol, "\(what): finite difference \(fd) vs analytic \(an)", file: file, line: line)
    }
}

/// A random tensor whose entries stay at least `margin` away from zero, so ReLU kinks are
/// not crossed by a finite-difference step.
func awayFromZero(_ shape: [Int], margin: Float = 0.05, rng: inout RNG) -> Tensor {
    var t = Tensor.normal(shape: shape, std: 1, rng: &rng)
    for i in 0..<t.count {
        let v = t[flat: i]
        if abs(v) < margin { t[flat: i] = v < 0 ? v - margin : v + margin }
    }
    return t
}
