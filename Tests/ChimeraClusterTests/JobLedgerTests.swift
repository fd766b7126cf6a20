import ChimeraML
import ChimeraWire
import Testing

@testable import ChimeraCluster

/// The job ledger and a job's progress decisions, without sockets.
@Suite("Job ledger")
struct JobLedgerTests {
    @Test("a fit is refused for the wrong mode first, then while one runs, then while workers are awaited")
    func admission() {
        var ledger = JobLedger(mode: .parameterServer, tokenSecret: 9)
        #expect(ledger.mayStart(.parameterServer, waiting: nil) == nil)
        #expect(ledger.mayStart(.unspecified, waiting: nil) == nil)
        #expect(ledger.mayStart(.aggregation, waiting: nil)?.code == .wrongMode)
        #expect(ledger.mayStart(.parameterServer, waiting: "1 of 2 ready") == .waiting("1 of 2 ready"))
        let id = ledger.begin(.parameterServer)
        #expect(ledger.mayStart(.parameterServer, waiting: "1 of 2 ready") == .busy(running: id))
        #expect(ledger.mayStart(.parameterServer, waiting: nil)?.message == "job 1 is running")
        #expect(ledger.mayStart(.aggregation, waiting: nil)?.code == .wrongMode)
        ledger.end()
        #expect(!ledger.isBusy && ledger.mayStart(.parameterServer, waiting: nil) == nil)
        #expect(
            JobLedger(mode: .aggregation, tokenSecret: 1).mayStart(.parameterServer, waiting: nil)?.code == .wrongMode)
    }

    @Test("ids count up; a resumed job keeps its id and later ones follow it")
    func ids() {
        var ledger = JobLedger(mode: .parameterServer, tokenSecret: 9)
        #expect(ledger.begin(.parameterServer) == 1)
        ledger.end()
        #expect(ledger.begin(.parameterServer, resumed: 7) == 7)
        ledger.end()
        #expect(ledger.begin(.parameterServer) == 8)
        ledger.end()
        // An older id resumed does not send the numbering back.
        #expect(ledger.begin(.parameterServer, resumed: 3) == 3)
        ledger.end()
        #expect(ledger.begin(.aggregation) == 9)
    }

    @Test("cancel needs the job's token (or an authenticated client), and the job must be running")
    func cancelling() {
        var ledger = JobLedger(mode: .aggregation, tokenSecret: 12345)
        let id = ledger.begin(.aggregation)
        let token = ledger.token(of: id)
        #expect(token != 0 && token != ledger.token(of: id + 1))
        #expect(
            JobLedger(mode: .aggregation, tokenSecret: 54321).token(of: id) != token, "another master's tokens differ")
        #expect(ledger.cancel(id, token: token ^ 2, authenticatedClient: false) == .forbidden)
        #expect(ledger.cancel(id, token: 0, authenticatedClient: true) == .cancel(.aggregation))
        #expect(ledger.cancel(id, token: token, authenticatedClient: false) == .cancel(.aggregation))
        #expect(ledger.cancel(id + 1, token: ledger.token(of: id + 1), authenticatedClient: false) == .notRunning)
        ledger.end()
        #expect(ledger.cancel(id, token: token, authenticatedClient: false) == .notRunning)
    }

    static func state(iterations: Int = 3, checkpointEvery: Int = 0) -> ParameterServerState {
        var configuration = TrainingConfiguration()
        configuration.maxIterations = iterations
        configuration.checkpointEvery = checkpointEvery
        configuration.model = .linearRegression
        var state = ParameterServerState(
            configuration: configuration, objective: Objective(kind: .linearRegression, features: 1, classes: []))
        _ = state.join(1, rows: 4)
        return state
    }

    /// One BSP round of worker 1 with `loss` and a small gradient.
    static func round(_ state: inout ParameterServerState, loss: Double) {
        let clock = state.completedIterations
        _ = state.requestStart(1, clock: clock)
        _ = state.push(1, clock: clock, rows: 4, loss: loss) { into, scale in
            for index in into.indices { into[index] += 0.01 * scale }
        }
    }

    @Test("progress: running, a checkpoint every K iterations, done, every worker gone, diverged")
    func progress() {
        var state = Self.state(iterations: 3, checkpointEvery: 2)
        #expect(JobProgress.of(state, lastCheckpoint: 0, failedWorkers: []) == .running)
        Self.round(&state, loss: 1)
        #expect(JobProgress.of(state, lastCheckpoint: 0, failedWorkers: []) == .running)
        Self.round(&state, loss: 0.9)
        #expect(JobProgress.of(state, lastCheckpoint: 0, failedWorkers: []) == .checkpointDue)
        #expect(JobProgress.of(state, lastCheckpoint: 2, failedWorkers: []) == .running)
        Self.round(&state, loss: 0.8)
        #expect(
            JobProgress.of(state, lastCheckpoint: 2, failedWorkers: [])
                == .finished(.succeeded, error: "", code: .unspecified))

        var orphaned = Self.state()
        _ = orphaned.leave(1)
        #expect(
            JobProgress.of(orphaned, lastCheckpoint: 0, failedWorkers: ["w1"])
                == .finished(.failed, error: "every worker failed (w1)", code: .noWorkers))

        var diverging = Self.state()
        Self.round(&diverging, loss: .infinity)
        guard
            case .finished(.failed, let error, .diverged) = JobProgress.of(
                diverging, lastCheckpoint: 0, failedWorkers: [])
        else {
            Issue.record("a non-finite loss is not a divergence")
            return
        }
        #expect(error.contains("not finite"))
    }
}
