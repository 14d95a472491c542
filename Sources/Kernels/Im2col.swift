/// The geometry of a 2-D convolution or pooling window over one image.
public struct ConvGeometry: Equatable, Sendable {
    /// Input channels, height and width.
    public var channels, height, width: Int
    /// Window height and width.
    public var kernelH, kernelW: Int
    /// Step between windows.
    public var strideH, strideW: Int
    /// Zero padding added on each side.
    public var padH, padW: Int

    /// Creates a geometry; output sizes follow PyTorch's floor rule.
    public init(
        channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
        strideH: Int = 1, strideW: Int = 1, padH: Int = 0, padW: Int = 0
    ) {
        precondition(
            kernelH > 0 && kernelW > 0 && strideH > 0 && strideW > 0 && padH >= 0 && padW >= 0,
            "ConvGeometry: kernel \(kernelH)x\(kernelW), stride \(strideH)x\(strideW), pad \(padH)x\(padW) is invalid")
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.strideH = strideH
        self.strideW = strideW
        self.padH = padH
        self.padW = padW
    }

    /// Output height: `floor((H + 2p - k) / s) + 1`.
    public var outH: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    /// Output width.
    public var outW: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    /// Rows of the column matrix: `channels * kernelH * kernelW`.
    public var colRows: Int { channels * kernelH * kernelW }
    /// Columns of the column matrix: `outH * outW`.
    public var colCols: Int { outH * outW }

    /// Output columns `ow` whose input column `ow * s - p + kj` lies inside the image.
    @inline(__always)
    func validRange(kernelOffset kj: Int, stride: Int, pad: Int, inSize: Int, outSize: Int) -> Range<Int> {
        // ow * s - p + kj >= 0   <=>  ow >= ceil((p - kj) / s)
        // ow * s - p + kj < in   <=>  ow <= floor((in - 1 + p - kj) / s)
        let lo = max(0, ceilDiv(pad - kj, stride))
        let hi = min(outSize, floorDiv(inSize - 1 + pad - kj, stride) + 1)
        return lo < hi ? lo..<hi : lo..<lo
    }
}

@inline(__always) func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
@inline(__always) func ceilDiv(_ a: Int, _ b: Int) -> Int { -floorDiv(-a, b) }

/// Unfolds one image `[C, H, W]` into the column matrix `[C*kh*kw, outH*outW]` (row-major), so a
/// convolution becomes one GEMM. Out-of-image taps are zero.
public func im2col(_ image: UnsafePointer<Float>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<Float>) {
    let oh = g.outH
    let ow = g.outW
    let hw = g.height * g.width
    var row = 0
    for c in 0..<g.channels {
        let plane = image + c * hw
        for ki in 0..<g.kernelH {
            let rows = g.validRange(kernelOffset: ki, stride: g.strideH, pad: g.padH, inSize: g.height, outSize: oh)
            for kj in 0..<g.kernelW {
                let cols = g.validRange(kernelOffset: kj, stride: g.strideW, pad: g.padW, inSize: g.width, outSize: ow)
                let dst = col + row * oh * ow
                row += 1
                if rows.isEmpty || cols.isEmpty {
                    dst.update(repeating: 0, count: oh * ow)
                    continue
                }
                if rows.lowerBound > 0 { dst.update(repeating: 0, count: rows.lowerBound * ow) }
                if rows.upperBound < oh {
                    (dst + rows.upperBound * ow).update(repeating: 0, count: (oh - rows.upperBound) * ow)
                }
                for y in rows {
                    let out = dst + y * ow
                    let src = plane + (y * g.strideH - g.padH + ki) * g.width
                    // Rows are short (32 floats or fewer in these networks) and the padding a
                    // tap or two: plain loops, not memset/memmove calls.
                    for o in 0..<cols.lowerBound { out[o] = 0 }
                    for o in cols.upperBound..<ow { out[o] = 0 }
                    let x0 = cols.lowerBound * g.strideW - g.padW + kj
                    if g.strideW == 1 {
                        Vector.copy(src + x0, out + cols.lowerBound, cols.count)
                    } else {
                        var x = x0
                        for o in cols {
                            out[o] = src[x]
                            x += g.strideW
                        }
                    }
                }
            }
        }
    }
}

/// Folds a column matrix `[C*kh*kw, outH*outW]` back onto an image `[C, H, W]`, *adding* every
/// tap into the pixel it came from (the adjoint of `im2col`). The image is not cleared first.
public func col2im(_ col: UnsafePointer<Float>, _ g: ConvGeometry, _ image: UnsafeMutablePointer<Float>) {
    let oh = g.outH
    let ow = g.outW
    let hw = g.height * g.width
    var row = 0
    for c in 0..<g.channels {
        let plane = image + c * hw
        for ki in 0..<g.kernelH {
            let rows = g.validRange(kernelOffset: ki, stride: g.strideH, pad: g.padH, inSize: g.height, outSize: oh)
            for kj in 0..<g.kernelW {
                let cols = g.validRange(kernelOffset: kj, stride: g.strideW, pad: g.padW, inSize: g.width, outSize: ow)
                let srcRow = col + row * oh * ow
                row += 1
                if cols.isEmpty { continue }
                for y in rows {
                    let src = srcRow + y * ow
                    let dst = plane + (y * g.strideH - g.padH + ki) * g.width
                    let x0 = cols.lowerBound * g.strideW - g.padW + kj
                    if g.strideW == 1 {
                        Vector.add(dst + x0, src + cols.lowerBound, dst + x0, cols.count)
                    } else {
                        var x = x0
                        for o in cols {
                            dst[x] += src[o]
                            x += g.strideW
                        }
                    }
                }
            }
        }
    }
}

/// Plain twin of `im2col`: one bounds check per element.
public func referenceIm2col(_ image: UnsafePointer<Float>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<Float>) {
    let oh = g.outH
    let ow = g.outW
    for c in 0..<g.channels {
        for ki in 0..<g.kernelH {
            for kj in 0..<g.kernelW {
                let row = (c * g.kernelH + ki) * g.kernelW + kj
                for y in 0..<oh {
                    for x in 0..<ow {
                        let iy = y * g.strideH - g.padH + ki
                        let ix = x * g.strideW - g.padW + kj
                        let inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width
                        col[row * oh * ow + y * ow + x] = inside ? image[(c * g.height + iy) * g.width + ix] : 0
                    }
                }
            }
        }
    }
}

/// Plain twin of `col2im`.
public func referenceCol2im(_ col: UnsafePointer<Float>, _ g: ConvGeometry, _ image: UnsafeMutablePointer<Float>) {
    let oh = g.outH
    let ow = g.outW
    for c in 0..<g.channels {
        for ki in 0..<g.kernelH {
            for kj in 0..<g.kernelW {
                let row = (c * g.kernelH + ki) * g.kernelW + kj
                for y in 0..<oh {
                    for x in 0..<ow {
                        let iy = y * g.strideH - g.padH + ki
                        let ix = x * g.strideW - g.padW + kj
                        if iy >= 0 && iy < g.height && ix >= 0 && ix < g.width {
                            image[(c * g.height + iy) * g.width + ix] += col[row * oh * ow + y * ow + x]
                        }
                    }
                }
            }
        }
    }
}
