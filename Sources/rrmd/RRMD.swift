import ArgumentParser
import Kernels
import ModelIO

/// The `rrmd` command: the daemon and the tools around it.
@main
struct RRMD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rrmd",
        abstract: "Distil adversarially robust students from robust teachers (Robust Representation Matching).",
        version: RRMDVersion.string,
        subcommands: [
            ServeCommand.self, SubmitCommand.self, StatusCommand.self, TrainCommand.self, DistillCommand.self,
            EvaluateCommand.self, BenchCommand.self, InspectCommand.self, PredictCommand.self, AgreementCommand.self,
            TeacherClassifierCommand.self,
        ])

    /// Picks OpenBLAS's faster kernel for small convolutions first (this may restart the
    /// program once; see `BLASKernel`), then parses and runs the command as usual.
    static func main() {
        BLASKernel.preferHaswellKernel()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
