/// The random-crop offset and flip drawn for one image of a batch.
public struct AugmentationDraw: Equatable, Sendable {
    /// Vertical shift in pixels: output row y shows input row y + dy.
    public var dy: Int
    /// Horizontal shift in pixels: output column x shows input column x + dx (before flipping).
    public var dx: Int
    /// Whether the shifted image is mirrored left-right.
    public var flip: Bool

    /// The identity: no shift, no flip.
    public static let identity = AugmentationDraw(dy: 0, dx: 0, flip: false)

    /// A draw with the given shift and flip.
    public init(dy: Int, dx: Int, flip: Bool) {
        self.dy = dy
        self.dx = dx
        self.flip = flip
    }
}

/// Pixel-level augmentation kernels.
public enum Augmentation {
    /// Writes one `[C, H, W]` image shifted by (dy, dx) with zeros where the shift uncovers the
    /// border, then mirrored if `draw.flip`:
    /// `dst[c, y, x] = src[c, y + dy, (flip ? W - 1 - x : x) + dx]`, 0 when out of range.
    /// With dy, dx uniform in [-p, p] this equals torchvision's `RandomCrop(size, padding: p)`
    /// followed by `RandomHorizontalFlip`.
    public static func shiftAndFlip(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
        channels: Int, height: Int, width: Int, draw: AugmentationDraw
    ) {
        let (h, w, dy, dx) = (height, width, draw.dy, draw.dx)
        let plane = h * w
        if dy == 0 && dx == 0 && !draw.flip {
            dst.update(from: src, count: channels * plane)
            return
        }
        // Columns whose source x + dx lies inside the image (before the flip).
        let lo = min(w, max(0, -dx))
        let hi = max(lo, min(w, w - dx))
        for c in 0..<channels {
            for y in 0..<h {
                let out = dst + c * plane + y * w
                let sy = y + dy
                if sy < 0 || sy >= h {
                    out.update(repeating: 0, count: w)
                    continue
                }
                let row = src + c * plane + sy * w
                if !draw.flip {
                    out.update(repeating: 0, count: lo)
                    (out + lo).update(from: row + lo + dx, count: hi - lo)
                    (out + hi).update(repeating: 0, count: w - hi)
                } else {
                    for x in 0..<w {
                        let sx = w - 1 - x + dx
                        out[x] = sx >= 0 && sx < w ? row[sx] : 0
                    }
                }
            }
        }
    }
}
