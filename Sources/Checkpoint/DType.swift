/// A safetensors element type, spelled as in the file's `dtype` field.
///
/// Every dtype the stable safetensors format defines is recognised so a reader can report it;
/// only `f32` and `i64` are decoded into values (`StoredTensor.float32` / `.int64`), the rest
/// are kept as raw little-endian bytes (`StoredTensor.raw`).
public enum DType: String, CaseIterable, Sendable {
    /// Boolean, one byte per element.
    case bool = "BOOL"
    /// Unsigned 8-bit integer.
    case u8 = "U8"
    /// Signed 8-bit integer.
    case i8 = "I8"
    /// 8-bit float, 5 exponent bits and 2 mantissa bits.
    case f8e5m2 = "F8_E5M2"
    /// 8-bit float, 4 exponent bits and 3 mantissa bits.
    case f8e4m3 = "F8_E4M3"
    /// Signed 16-bit integer.
    case i16 = "I16"
    /// Unsigned 16-bit integer.
    case u16 = "U16"
    /// IEEE half-precision float.
    case f16 = "F16"
    /// bfloat16 (the upper half of a Float32).
    case bf16 = "BF16"
    /// Signed 32-bit integer.
    case i32 = "I32"
    /// Unsigned 32-bit integer.
    case u32 = "U32"
    /// IEEE single-precision float.
    case f32 = "F32"
    /// IEEE double-precision float.
    case f64 = "F64"
    /// Signed 64-bit integer.
    case i64 = "I64"
    /// Unsigned 64-bit integer.
    case u64 = "U64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    /// The dtype's position in the Rust `safetensors::Dtype` enum, which the reference writer
    /// sorts by (descending) before the name. Matching it makes our files byte-identical to
    /// `safetensors.torch.save_file` output. The declaration order above is that enum's order.
    var writeRank: Int { DType.allCases.firstIndex(of: self)! }
}
