import ArgumentParser
import Bench
import Foundation
import Kernels
import ModelIO

/// `rrmd bench`: the peer workloads of `shared/peers/`, timed the same way.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the training and inference workloads that the PyTorch peers time (batch 128, 3x32x32).")

    @Option(help: "Compute threads (the peers use 2).")
    var threads = 2

    @Option(help: "Measurements per workload; the median is reported.")
    var repeats = 5

    @Option(name: .customLong("min-seconds"), help: "Minimum length of one measurement, in seconds.")
    var minSeconds = 2.0

    @Option(
        help:
            ArgumentHelp(
                "Comma-separated workloads (default: all of \(Benchmarks.workloads.joined(separator: ","))"
                    + "; also \(Benchmarks.optionalWorkloads.joined(separator: ",")), a model-zoo-sized RRM step).")
    )
    var only: String?

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        Compute.configure(threads: threads)
        let names = only.map { $0.split(separator: ",").map(String.init) } ?? Benchmarks.workloads
        for n in names where !Benchmarks.knownWorkloads.contains(n) {
            throw ValidationError(
                "unknown workload '\(n)'; known: \(Benchmarks.knownWorkloads.joined(separator: ", "))")
        }
        let timer = BenchTimer(repeats: repeats, minSeconds: minSeconds)
        // The sgemm rate brackets the workloads (measured before and after, the mean used): on a
        // host whose speed drifts, one measurement taken first can sit in a different spell from
        // the workloads it is compared with.
        let sgemmBefore = Benchmarks.sgemmGFLOPS()
        if !json {
            print(
                String(
                    format: "OpenBLAS (%@ kernel) sgemm 2048^3, %d threads: %.1f GFLOP/s",
                    BLASKernel.coreName as NSString, threads, sgemmBefore))
        }
        var results: [String: Benchmarks.Result] = [:]
        for name in names {
            let r = try Benchmarks.run(name, timer: timer)
            results[name] = r
            if !json {
                print(
                    String(
                        format: "%-18@ %9.1f images/s %7.1f GFLOP/s  peak RSS %5.0f MiB  other cores %@",
                        name as NSString, r.imagesPerSecond, r.gflops,
                        Double(r.peakResidentBytes ?? 0) / 1_048_576,
                        r.measurement.otherCores.map { String(format: "%.2f", $0) }.joined(separator: " ") as NSString))
            }
        }
        let sgemmAfter = Benchmarks.sgemmGFLOPS()
        let sgemm = (sgemmBefore + sgemmAfter) / 2
        if !json {
            print(String(format: "sgemm 2048^3 after the workloads: %.1f GFLOP/s; mean %.1f", sgemmAfter, sgemm))
            for name in names {
                guard let r = results[name] else { continue }
                print(
                    String(
                        format: "%-18@ %7.1f GFLOP/s = %.0f%% of the mean sgemm rate", name as NSString, r.gflops,
                        100 * r.gflops / sgemm))
            }
        }
        if json {
            var object: [String: Any] = [
                "sgemm_gflops": sgemm, "sgemm_gflops_before": sgemmBefore, "sgemm_gflops_after": sgemmAfter,
                "threads": threads, "batch": Benchmarks.batch,
                "openblas_core": BLASKernel.coreName,
            ]
            for (k, r) in results {
                object[k] = [
                    "images_per_s": r.imagesPerSecond, "gflops": r.gflops,
                    "fwd_flops_per_image": r.forwardFLOPsPerImage,
                    "images_per_s_all": r.measurement.all, "other_cores_all": r.measurement.otherCores,
                    "iters_per_measurement": r.measurement.iterations,
                    "peak_rss_bytes": r.peakResidentBytes ?? NSNull(),
                ]
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
