extension SafeTensors {
    /// Names (in archive order) of the floating-point tensors holding any NaN or ±infinity.
    ///
    /// Reading never rejects such values (a file is read as written), but a diverged training
    /// run produces them and a student trained from such a teacher is worthless, so callers
    /// that load weights ask this. F32 tensors are checked, and raw F64/F16/BF16 ones by their
    /// bit patterns; 8-bit floats and integers are skipped.
    public func nonFiniteTensorNames() -> [String] {
        names.filter { name in
            switch self[name]! {
            case .float32(let t):
                return t.withUnsafePointer { UnsafeBufferPointer(start: $0, count: t.count).contains { !$0.isFinite } }
            case .int64:
                return false
            case .raw(let dtype, _, let bytes):
                switch dtype {
                case .f64: return Self.anyExponentAllOnes(bytes, width: 8, mask: 0x7FF0_0000_0000_0000)
                case .f16: return Self.anyExponentAllOnes(bytes, width: 2, mask: 0x7C00)
                case .bf16: return Self.anyExponentAllOnes(bytes, width: 2, mask: 0x7F80)
                default: return false
                }
            }
        }
    }

    /// Throws `CheckpointError.nonFinite` listing every tensor that holds NaN or ±infinity;
    /// `source` names the checkpoint in the message.
    public func validateFinite(source: String = "<memory>") throws {
        let bad = nonFiniteTensorNames()
        if !bad.isEmpty { throw CheckpointError.nonFinite(source: source, tensors: bad) }
    }

    /// True if some little-endian element of `width` bytes has all exponent bits (`mask`) set,
    /// which is how IEEE formats encode NaN and infinity.
    private static func anyExponentAllOnes(_ bytes: [UInt8], width: Int, mask: UInt64) -> Bool {
        stride(from: 0, to: bytes.count - width + 1, by: width).contains { start in
            var bits: UInt64 = 0
            for k in 0..<width { bits |= UInt64(bytes[start + k]) << UInt64(8 * k) }
            return bits & mask == mask
        }
    }
}
