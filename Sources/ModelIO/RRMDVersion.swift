/// rrmd's version: the one place it is written. Checkpoints (`rrm.producer`), reports
/// (`rrmd_version`), the journal and `rrmd --version` all read it from here.
public enum RRMDVersion {
    /// The version number, e.g. `0.1.0`.
    public static let string = "0.1.0"
    /// How rrmd signs what it writes, e.g. `rrmd 0.1.0`.
    public static var producer: String { "rrmd \(string)" }
}
