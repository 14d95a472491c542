/// Whole-file access with the readers' safety rules, for formats parsed elsewhere.
public enum DataFile {
    /// The content of `path`, gunzipped when it starts with the gzip magic (whatever its name);
    /// refuses files or decompressed contents over `maxBytes`.
    public static func content(of path: String, maxBytes: Int = DataLimits.maxBytes) throws -> [UInt8] {
        try ContentReader(path: path, maxBytes: maxBytes).readToEnd()
    }
}
