import KernelsAVX512

/// The weight gradient of a stride-2 3x3 convolution over a group of images
/// (`stridedConv3x3WeightGradient`), read from the layouts the other two passes build: the
/// input images split into phases by `pad`, and dL/dy as `padGradient` borders it. Shifted by one
/// row and one column, that bordered dy is dL/dy at the output positions of the phase planes,
/// with the zero column in front of each row as the zero the extra output column needs.
extension StridedConv3x3 {
    /// Images per group: as many as keep the group's phase planes and bordered gradients within
    /// 512 KiB (a Zen L2 is 1 MiB).
    public var weightGradientGroup: Int {
        max(1, (512 * 1024 / 4) / (paddedInputCount + paddedGradientCount))
    }

    /// Adds the weight gradient of `images` images to `dW [outChannels][inChannels][3][3]`.
    /// `paddedInputs` holds the input images as `pad` writes them, `inputStride` floats apart;
    /// `paddedGradients` holds dL/dy of the same images as `padGradient` writes them,
    /// `gradientStride` floats apart.
    public func accumulateWeightGradient(
        paddedInputs: UnsafePointer<Float>, inputStride: Int,
        paddedGradients: UnsafePointer<Float>, gradientStride: Int, images: Int,
        into dW: UnsafeMutablePointer<Float>
    ) {
        // Output position j = y * rowStride + x is bordered position j + rowStride + 1.
        stridedConv3x3WeightGradient(
            inputs: PlaneStreams(paddedInputs, imageStride: inputStride, channelStride: 4 * phaseStride),
            inChannels: inChannels,
            gradients: PlaneStreams(
                paddedGradients + rowStride + 1, imageStride: gradientStride,
                channelStride: gradientPlaneStride),
            outChannels: outChannels, images: images, positions: outHeight * rowStride,
            phaseStride: phaseStride, rowStride: rowStride, weightGradient: dW)
    }
}
