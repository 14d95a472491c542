import CBLAS
import Foundation

/// Chooses OpenBLAS's GEMM kernel before the library is used.
///
/// OpenBLAS picks its kernel from the CPU when it loads and reads `OPENBLAS_CORETYPE` only then.
/// On AVX-512 CPUs it picks its AVX-512 kernels, which are slow on the narrow matrices of small
/// convolutions (16-64 rows); its Haswell (AVX2 + FMA) kernel is up to 1.8x faster on those
/// shapes and as fast on large square ones (`../shared/peers/README.md`; our measurement is in
/// docs/performance.md). Since the library is already loaded when `main` runs, the only way to
/// choose is to set the variable and start the program again.
public enum BLASKernel {
    /// The variable OpenBLAS reads at load time.
    public static let variable = "OPENBLAS_CORETYPE"

    /// If the operator has not chosen a kernel and this CPU has AVX-512 (where OpenBLAS would pick
    /// the slow kernels), sets `OPENBLAS_CORETYPE=Haswell` and re-executes this program with the
    /// same arguments. Returns normally when nothing needs doing or exec fails (the default
    /// kernel is then used: slower, still correct).
    public static func preferHaswellKernel() {
        guard getenv(variable) == nil else { return }
        let flags = cpuFlags()
        guard flags.contains("avx512f"), flags.contains("avx2"), flags.contains("fma") else { return }
        setenv(variable, "Haswell", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// The kernel OpenBLAS chose when it loaded ("Haswell", "Cooperlake", ...).
    public static var coreName: String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    /// True when this CPU has AVX-512, i.e. when `preferHaswellKernel` changes the kernel.
    public static var cpuHasAVX512: Bool { cpuFlags().contains("avx512f") }

    /// The `flags` of the first processor in `/proc/cpuinfo` (empty when unreadable).
    static func cpuFlags() -> Set<Substring> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " "))
    }
}
