import TensorCore

/// One tensor as stored in a checkpoint: decoded values for F32 and I64, raw bytes otherwise.
public enum StoredTensor {
    /// A Float32 tensor (dtype F32); shape `[]` is a scalar.
    case float32(Tensor)
    /// An Int64 tensor (dtype I64), e.g. BatchNorm's `num_batches_tracked` with shape `[]`.
    /// `values.count` must equal the product of `shape`.
    case int64(shape: [Int], values: [Int64])
    /// Any other dtype, kept undecoded as little-endian bytes so it can be reported, converted
    /// later, or written back unchanged. `bytes.count` must equal elements × `dtype.size`.
    case raw(dtype: DType, shape: [Int], bytes: [UInt8])

    /// Dimensions, outermost first; `[]` for a scalar.
    public var shape: [Int] {
        switch self {
        case .float32(let t): return t.shape
        case .int64(let shape, _): return shape
        case .raw(_, let shape, _): return shape
        }
    }

    /// The element type written to the file.
    public var dtype: DType {
        switch self {
        case .float32: return .f32
        case .int64: return .i64
        case .raw(let dtype, _, _): return dtype
        }
    }

    /// Number of elements (1 for a scalar, 0 if any dimension is 0).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Size of the tensor's data in the file, in bytes.
    public var byteCount: Int { elementCount * dtype.size }

    /// Stops with a precise message if the payload does not match the declared shape: such a
    /// value can only come from a programming error, never from a file (the reader validates).
    func checkConsistent(_ name: String) {
        switch self {
        case .float32(let t):
            precondition(
                t.count == elementCount, "StoredTensor '\(name)': tensor of shape \(t.shape) has \(t.count) elements")
        case .int64(let shape, let values):
            precondition(shape.allSatisfy { $0 >= 0 }, "StoredTensor '\(name)': negative dimension in shape \(shape)")
            precondition(
                values.count == elementCount,
                "StoredTensor '\(name)': shape \(shape) needs \(elementCount) Int64 values, got \(values.count)")
        case .raw(let dtype, let shape, let bytes):
            precondition(shape.allSatisfy { $0 >= 0 }, "StoredTensor '\(name)': negative dimension in shape \(shape)")
            precondition(
                bytes.count == byteCount,
                "StoredTensor '\(name)': shape \(shape) of \(dtype.rawValue) needs \(byteCount) bytes, got "
                    + "\(bytes.count)"
            )
        }
    }
}
