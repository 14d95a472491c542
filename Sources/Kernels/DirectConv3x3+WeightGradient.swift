import KernelsAVX512

/// The weight gradient of a direct 3x3 convolution, a group of images at a time
/// (`conv3x3WeightGradient`): the input images and dL/dy are laid out as one stream per channel
/// (the images' padded planes back to back), so the reduction over every pixel of the group is
/// one loop with its sums in registers, and no im2col matrix or GEMM packing is built.
extension DirectConv3x3 {
    /// Images per group: as many as keep the two padded streams within 512 KiB (a Zen L2 is 1 MiB).
    public var weightGradientGroup: Int {
        max(1, (512 * 1024 / 4) / ((inChannels + outChannels) * planeStride))
    }

    /// Output positions of a group's stream, rounded up to whole 16-lane steps.
    func streamLength(images: Int) -> Int { (images * planeStride + 15) / 16 * 16 }

    /// Floats between channels in a group's streams: the positions plus the furthest tap offset.
    public func streamStride(images: Int) -> Int { streamLength(images: images) + (2 * rowStride + 2 + 15) / 16 * 16 }

    /// Floats `padInputStreams` or `padGradientStreams` writes for `images` images.
    public func streamCount(images: Int, channels: Int) -> Int { channels * streamStride(images: images) }

    /// Copies `images` consecutive images `[inChannels, H, W]` into input streams: channel `c` of
    /// image `b` at `c * streamStride + b * planeStride`, zero-bordered as `pad` lays it out; every
    /// other float up to the stride is zero.
    public func padInputStreams(_ src: UnsafePointer<Float>, images: Int, _ dst: UnsafeMutablePointer<Float>) {
        let stride = streamStride(images: images), rs = rowStride, hw = height * width
        for c in 0..<inChannels {
            let stream = dst + c * stride
            for b in 0..<images {
                let plane = stream + b * planeStride, image = src + (b * inChannels + c) * hw
                plane.update(repeating: 0, count: rs + 1)
                for y in 0..<height {
                    let row = plane + (y + 1) * rs
                    Vector.copy(image + y * width, row + 1, width)
                    row[width + 1] = 0; row[width + 2] = 0
                }
                (plane + (height + 1) * rs + 1).update(repeating: 0, count: rs - 1)
            }
            (stream + images * planeStride).update(repeating: 0, count: stride - images * planeStride)
        }
    }

    /// Copies dL/dy of `images` consecutive images `[outChannels, H, W]` into gradient streams at
    /// the output positions of the padded-flat layout (`y * rowStride + x` within each image's
    /// plane); the two extra columns per row, the two extra rows per plane and the tail are zero.
    public func padGradientStreams(_ dy: UnsafePointer<Float>, images: Int, _ dst: UnsafeMutablePointer<Float>) {
        let stride = streamStride(images: images), rs = rowStride, hw = height * width
        for c in 0..<outChannels {
            let stream = dst + c * stride
            for b in 0..<images {
                let plane = stream + b * planeStride, image = dy + (b * outChannels + c) * hw
                for y in 0..<height {
                    let row = plane + y * rs
                    Vector.copy(image + y * width, row, width)
                    row[width] = 0; row[width + 1] = 0
                }
                (plane + height * rs).update(repeating: 0, count: 2 * rs)
            }
            (stream + images * planeStride).update(repeating: 0, count: stride - images * planeStride)
        }
    }

    /// Adds the group's weight gradient to `dW [outChannels][inChannels][3][3]`.
    public func accumulateWeightGradient(inputs: UnsafePointer<Float>, gradients: UnsafePointer<Float>, images: Int,
                                         into dW: UnsafeMutablePointer<Float>) {
        conv3x3WeightGradient(inputs: inputs, inChannels: inChannels, gradients: gradients, outChannels: outChannels,
                              streamStride: streamStride(images: images), length: streamLength(images: images),
                              rowStride: rowStride, weightGradient: dW)
    }
}
