import CBLAS
import Foundation

/// Chooses OpenBLAS's GEMM kernel before the library is used.
///
/// OpenBLAS picks its kernel from the CPU when it loads and reads `OPENBLAS_CORETYPE` only then.
/// On AMD Zen 4 (family 25 with AVX-512), which runs 512-bit instructions as two 256-bit halves,
/// it picks an AVX-512 kernel that is slow on the narrow matrices of small convolutions; its
/// Haswell (AVX2 + FMA) kernel is up to 1.8x faster there (`../shared/peers/README.md`). On Zen 5
/// (family 26), whose AVX-512 units are full width, the AVX-512 kernel is the fast one: sgemm
/// 2048^3 runs at about 450 GFLOP/s against 240 with the Haswell kernel, and the ResNet-20 train
/// step 1.3x faster (docs/performance.md). So rrmd asks for the Haswell kernel on Zen 4 only.
/// Since the library is already loaded when `main` runs, asking means setting the variable and
/// starting the program again.
public enum BLASKernel {
    /// The variable OpenBLAS reads at load time.
    public static let variable = "OPENBLAS_CORETYPE"

    /// If the operator has not chosen a kernel and this CPU is one where OpenBLAS's own choice
    /// is the slow one (`prefersHaswellKernel`), sets `OPENBLAS_CORETYPE=Haswell` and
    /// re-executes this program with the same arguments. Returns normally when nothing needs
    /// doing or exec fails (OpenBLAS's own kernel is then used: slower, still correct).
    public static func preferHaswellKernel() {
        guard getenv(variable) == nil, prefersHaswellKernel(cpuInfo()) else { return }
        setenv(variable, "Haswell", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// True for AMD Zen 4 (vendor AuthenticAMD, CPU family 25, AVX-512 and AVX2 + FMA), given
    /// the text of `/proc/cpuinfo`.
    public static func prefersHaswellKernel(_ cpuinfo: String) -> Bool {
        let fields = firstProcessor(cpuinfo)
        let flags = Set((fields["flags"] ?? "").split(separator: " "))
        return fields["vendor_id"] == "AuthenticAMD" && fields["cpu family"] == "25"
            && flags.contains("avx512f") && flags.contains("avx2") && flags.contains("fma")
    }

    /// The kernel OpenBLAS chose when it loaded ("Haswell", "Cooperlake", ...).
    public static var coreName: String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    /// True when `preferHaswellKernel` changes the kernel on this machine.
    public static var changesKernelHere: Bool { prefersHaswellKernel(cpuInfo()) }

    static func cpuInfo() -> String {
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    }

    /// `key: value` lines of the first processor block of `/proc/cpuinfo`.
    static func firstProcessor(_ cpuinfo: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in cpuinfo.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                if fields.isEmpty { continue } else { break }
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            if fields[key] == nil {
                fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return fields
    }
}
