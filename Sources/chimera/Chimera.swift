import ArgumentParser
import ChimeraCluster
import ChimeraGateway
import ChimeraML
import Foundation

@main
struct Chimera: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chimera",
        abstract: "Distributed machine learning over ZeroMQ: master, workers, gateway and tools.",
        version: "0.1.0",
        subcommands: [
            Master.self, Worker.self, Server.self, GatewayCommand.self, Local.self, Fit.self, Cancel.self,
            Settings.self,
            Predict.self, HTTPCommand.self, Status.self, Sweep.self, DataCommand.self, Demo.self,
            DemoWorker.self,
            Keys.self, Bench.self,
        ]
    )

    static func main() async {
        // Before any thread starts: OpenBLAS reads its kernel choice only when it loads (BLASCore).
        if let core = BLASCore.restartChoice() {
            setenv("OPENBLAS_CORETYPE", core, 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // exec failed: go on with the kernels OpenBLAS chose.
        }
        ChildProcess.unblockSignals()
        // The gateway serves HTTP: its tasks run on the event loops (see runConcurrencyOnEventLoops).
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "gateway"
            || (arguments.first == "master" && arguments.contains { $0.hasPrefix("--http-port") })
        {
            runConcurrencyOnEventLoops()
        }
        await main(nil)
    }
}
