import ChimeraML
import ChimeraWire

/// The master's jobs over time, one at a time: whether a fit may start, job ids and tokens, who may
/// cancel, and what a running parameter-server job's progress calls for. No I/O: the master's loop
/// acts on the decisions (replies, broadcasts, saving models).
struct JobLedger {
    enum Kind: Equatable, Sendable {
        case parameterServer, aggregation
    }

    struct Running: Equatable {
        let id: UInt64
        let kind: Kind
    }

    /// Why a fit may not start now.
    enum Refusal: Equatable {
        case wrongMode(String)
        case busy(running: UInt64)
        /// Workers are awaited (a resume, `--expect-workers`).
        case waiting(String)

        var code: Chimera_V1_ErrorCode {
            if case .wrongMode = self { return .wrongMode }
            return .busy
        }

        var message: String {
            switch self {
            case .wrongMode(let text), .waiting(let text): text
            case .busy(let id): "job \(id) is running"
            }
        }
    }

    /// What a CancelJob may do.
    enum Cancel: Equatable {
        /// No token of the job, and not an authenticated client.
        case forbidden
        case notRunning
        case cancel(Kind)
    }

    let mode: MasterMode
    /// Mixed with a job's id into the job's token (only the client that started the job gets it).
    let tokenSecret: UInt64
    private(set) var running: Running?
    private(set) var nextID: UInt64 = 1

    init(mode: MasterMode, tokenSecret: UInt64) {
        self.mode = mode
        self.tokenSecret = tokenSecret
    }

    var isBusy: Bool { running != nil }

    /// Why a request of `kind` does not fit this master's mode (nil: it does; unspecified always does).
    func modeMismatch(_ kind: Chimera_V1_JobKind) -> String? {
        switch (kind, mode) {
        case (.aggregation, .parameterServer):
            "this master runs in parameter-server mode; start one with --mode aggregation for bagging"
        case (.parameterServer, .aggregation):
            "this master runs in aggregation mode; start one with --mode parameter-server for SGD models"
        default: nil
        }
    }

    /// Whether a fit of `kind` may start; `waiting` says why workers are still awaited, if they are.
    func mayStart(_ kind: Chimera_V1_JobKind, waiting: String?) -> Refusal? {
        if let mismatch = modeMismatch(kind) { return .wrongMode(mismatch) }
        if let running { return .busy(running: running.id) }
        if let waiting { return .waiting(waiting) }
        return nil
    }

    /// Starts a job: a new id, or `resumed` (an interrupted job's own id; later ids follow it).
    mutating func begin(_ kind: Kind, resumed: UInt64? = nil) -> UInt64 {
        let id = resumed ?? nextID
        nextID = max(nextID, id + 1)
        running = Running(id: id, kind: kind)
        return id
    }

    mutating func end() { running = nil }

    /// The token of job `id`: given to the client that started it, needed to cancel it.
    func token(of id: UInt64) -> UInt64 {
        var mix = SplitMix64(seed: tokenSecret ^ id &* 0x9E37_79B9_7F4A_7C15)
        return mix.next() | 1
    }

    /// Only the client that started a job holds its token; an authenticated CURVE client (a key with
    /// the client role) may cancel any job.
    func cancel(_ id: UInt64, token: UInt64, authenticatedClient: Bool) -> Cancel {
        guard token == self.token(of: id) || authenticatedClient else { return .forbidden }
        guard let running, running.id == id else { return .notRunning }
        return .cancel(running.kind)
    }
}

/// What a running parameter-server job calls for after an event.
enum JobProgress: Equatable {
    case running
    /// `checkpoint_every` iterations since the last checkpoint.
    case checkpointDue
    case finished(Chimera_V1_JobState, error: String, code: Chimera_V1_ErrorCode)

    static func of(_ state: ParameterServerState, lastCheckpoint: Int, failedWorkers: Set<String>) -> JobProgress {
        if let divergence = state.divergence {
            return .finished(.failed, error: divergence.description, code: .diverged)
        }
        if state.isDone { return .finished(.succeeded, error: "", code: .unspecified) }
        if state.barrier.clocks.isEmpty {
            return .finished(
                .failed, error: "every worker failed (\(failedWorkers.sorted().joined(separator: ", ")))",
                code: .noWorkers)
        }
        let every = state.configuration.checkpointEvery
        if every > 0, state.completedIterations - lastCheckpoint >= every { return .checkpointDue }
        return .running
    }
}
