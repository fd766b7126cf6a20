package import ChimeraWire
import Foundation
public import ZeroMQ

/// Talks to a master's control socket: fit, predict, status, cancel. The gateway and the CLI use it.
/// Its public API speaks Swift types (`FitSettings`, `ClusterView`, `JobView`, `Prediction`); the
/// protobuf-level calls are `package`: for the gateway, benchmarks and tests of this package only.
///
/// One request at a time per client (REQ). A request that times out closes and replaces the socket
/// (a REQ socket that missed its reply cannot be reused) and throws `.timedOut`.
public final class MasterClient {
    public var endpoint: String { channel.endpoint }
    private let channel: RequestChannel
    /// When set, a wait for a reply ends as soon as the probe finds the master gone.
    public let probe: MasterProbe?

    public init(endpoint: String, context: Context? = nil, curve: CurveClientSettings? = nil, probe: MasterProbe? = nil)
        throws
    {
        channel = RequestChannel(context: try context ?? Context(), endpoint: endpoint, curve: curve)
        self.probe = probe
    }

    /// A client that watches the master with a probe of its own (for long waits: synchronous fits).
    public static func watching(endpoint: String, curve: CurveClientSettings? = nil) throws -> MasterClient {
        let context = try Context()
        return try MasterClient(
            endpoint: endpoint, context: context, curve: curve,
            probe: MasterProbe(endpoint: endpoint, context: context, curve: curve))
    }

    /// Sends a request and returns the reply; an `Error` reply is thrown as `MasterClientError.refused`.
    package func call(_ message: WireMessage, timeoutMilliseconds: Int32) throws -> WireMessage {
        try send(message)
        return try receive(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// The first half of `call`: sends without waiting. `receive` must come next, on this thread or
    /// (after a memory barrier) another one.
    package func send(_ message: WireMessage) throws {
        try channel.send { requestID in
            var message = message
            message.control.requestID = requestID
            return try WireCodec.encode(message)
        }
    }

    /// The second half of `call`: the reply to what `send` sent.
    package func receive(timeoutMilliseconds: Int32) throws -> WireMessage {
        let abandon: (() -> Bool)? = probe.map { probe in { probe.problem != nil } }
        guard let frames = try channel.receiveReply(timeoutMilliseconds: timeoutMilliseconds, abandon: abandon) else {
            if let problem = probe?.problem { throw problem }
            if channel.handshakeRefused { throw MasterClientError.curveRefused(endpoint: endpoint) }
            throw MasterClientError.timedOut(endpoint: endpoint, milliseconds: Int(timeoutMilliseconds))
        }
        let reply = try WireCodec.decode(frames)
        if case .error(let error) = reply.body {
            throw MasterClientError.refused(MasterRefusal(error.code), error.message)
        }
        return reply
    }

    /// Runs a fit; synchronous fits wait up to `timeoutMilliseconds` for the end.
    package func fit(_ request: Chimera_V1_FitRequest, timeoutMilliseconds: Int32 = 3_600_000) throws
        -> Chimera_V1_FitReply
    {
        let reply = try call(WireMessage(.fitRequest(request)), timeoutMilliseconds: timeoutMilliseconds)
        guard case .fitReply(let fit) = reply.body else { throw MasterClientError.unexpected(reply.body?.kindName) }
        return fit
    }

    /// Cancels a job: with its token (FitReply.job_token), or as a CURVE client with the client role.
    public func cancel(jobID: UInt64, token: UInt64, timeoutMilliseconds: Int32 = 10_000) throws {
        var cancel = Chimera_V1_CancelJob()
        cancel.jobID = jobID
        cancel.jobToken = token
        let reply = try call(WireMessage(.cancelJob(cancel)), timeoutMilliseconds: timeoutMilliseconds)
        guard case .ack = reply.body else { throw MasterClientError.unexpected(reply.body?.kindName) }
    }

    public struct Prediction: Sendable {
        public let values: [Double]
        public let classes: [Double]
        /// rows × classes, when asked for and the model has them.
        public let probabilities: [Float]?
        /// The classes' names when the labels were names: `values` and `classes` are then indices
        /// into this list.
        public var classNames: [String] = []

        public init(values: [Double], classes: [Double], probabilities: [Float]?, classNames: [String] = []) {
            self.values = values
            self.classes = classes
            self.probabilities = probabilities
            self.classNames = classNames
        }

        /// The name of class index `value` ("?" for an index the list does not have).
        public func className(_ value: Double) -> String {
            let index = Int(exactly: value) ?? -1
            return classNames.indices.contains(index) ? classNames[index] : "?"
        }

        /// Each row's prediction as text: the class name, or the number.
        public var texts: [String] {
            classNames.isEmpty ? values.map { "\($0)" } : values.map(className)
        }

        /// The most probable class of every row when probabilities came back, else the values.
        public var labels: [Double] {
            guard let probabilities, !classes.isEmpty else { return values }
            let k = classes.count
            return values.indices.map { r in
                var best = 0
                for c in 1..<k where probabilities[r * k + c] > probabilities[r * k + best] { best = c }
                return classes[best]
            }
        }
    }

    /// Predicts rows (row-major `values`, `columns` wide) on a master of `mode` (nil: either mode);
    /// `fanOut` asks an aggregation master to have the workers predict.
    public func predict(
        columns: [String], values: [Float], rows: Int, probabilities: Bool, mode: FitMode?, fanOut: Bool = false,
        timeoutMilliseconds: Int32 = 60_000
    ) throws -> Prediction {
        let kind: Chimera_V1_JobKind =
            switch mode {
            case .parameterServer: .parameterServer
            case .aggregation: .aggregation
            case nil: .unspecified
            }
        return try predict(
            columns: columns, values: values, rows: rows, probabilities: probabilities, kind: kind, fanOut: fanOut,
            timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Predicts rows (row-major `values`, `columns` wide). `kind` unspecified works with either master
    /// mode; `fanOut` asks an aggregation master to have the workers predict.
    package func predict(
        columns: [String], values: [Float], rows: Int, probabilities: Bool = false,
        kind: Chimera_V1_JobKind = .unspecified,
        fanOut: Bool = false, timeoutMilliseconds: Int32 = 60_000
    ) throws -> Prediction {
        try predict(
            columns: columns, x: .float32(values, shape: [rows, columns.count]), probabilities: probabilities,
            kind: kind,
            fanOut: fanOut, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Predicts the rows of `x` (float32 [rows, columns]), sent as they are.
    package func predict(
        columns: [String], x: Tensor, probabilities: Bool = false, kind: Chimera_V1_JobKind = .unspecified,
        fanOut: Bool = false, timeoutMilliseconds: Int32 = 60_000
    ) throws -> Prediction {
        try send(Self.predictMessage(columns: columns, x: x, probabilities: probabilities, kind: kind, fanOut: fanOut))
        return try receivePrediction(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// The request `predict` sends.
    package static func predictMessage(
        columns: [String], x: Tensor, probabilities: Bool = false, kind: Chimera_V1_JobKind = .unspecified,
        fanOut: Bool = false
    ) -> WireMessage {
        var request = Chimera_V1_PredictRequest()
        request.kind = kind
        request.columns = columns
        request.probabilities = probabilities
        request.fanOut = fanOut
        return WireMessage(.predictRequest(request), tensors: [NamedTensor("x", x)])
    }

    /// The reply to a predict request sent with `send`.
    package func receivePrediction(timeoutMilliseconds: Int32) throws -> Prediction {
        let reply = try receive(timeoutMilliseconds: timeoutMilliseconds)
        guard case .predictReply(let predict) = reply.body else {
            throw MasterClientError.unexpected(reply.body?.kindName)
        }
        return Prediction(
            values: try reply.tensor(named: "y").doubles(), classes: predict.classes,
            probabilities: try? reply.tensor(named: "proba").floats(), classNames: predict.classNames)
    }

    package func status(timeoutMilliseconds: Int32 = 10_000) throws -> Chimera_V1_ClusterStatus {
        let reply = try call(
            WireMessage(.statusRequest(Chimera_V1_StatusRequest())), timeoutMilliseconds: timeoutMilliseconds)
        guard case .clusterStatus(let status) = reply.body else {
            throw MasterClientError.unexpected(reply.body?.kindName)
        }
        return status
    }

    /// `lossesAfter`: also the losses of the iterations after that one.
    package func jobStatus(_ jobID: UInt64, lossesAfter: UInt64? = nil, timeoutMilliseconds: Int32 = 10_000) throws
        -> Chimera_V1_JobStatus
    {
        var request = Chimera_V1_JobStatusRequest()
        request.jobID = jobID
        if let lossesAfter { request.lossesAfter = lossesAfter }
        let reply = try call(WireMessage(.jobStatusRequest(request)), timeoutMilliseconds: timeoutMilliseconds)
        guard case .jobStatus(let status) = reply.body else { throw MasterClientError.unexpected(reply.body?.kindName) }
        return status
    }
}

public enum MasterClientError: Error, CustomStringConvertible, Sendable {
    case timedOut(endpoint: String, milliseconds: Int)
    /// The master answered with an error: why, and its message.
    case refused(MasterRefusal, String)
    case unexpected(String?)
    /// No answer to the probe's status requests for this long: the master is dead or cut off.
    case unreachable(endpoint: String, milliseconds: Int)
    /// The master's ZAP handler refused our CURVE public key (not in its allow-list).
    case curveRefused(endpoint: String)

    public var description: String {
        switch self {
        case .timedOut(let endpoint, let ms): "the master at \(endpoint) did not answer within \(ms) ms"
        case .unreachable(let endpoint, let ms):
            "no master answers at \(endpoint) (silent for \(ms / 1000) s): it is down, restarting or unreachable"
        case .curveRefused(let endpoint):
            "the master at \(endpoint) refused our CURVE key: add this client's public key to its allow-list (--curve-allow)"
        case .refused(let code, let message): "the master refused (\(code)): \(message)"
        case .unexpected(let kind): "unexpected reply from the master: \(kind ?? "none")"
        }
    }
}

/// Why the master refused a request (the wire's ErrorCode, as a Swift type of the client's API).
public enum MasterRefusal: String, Sendable, Equatable {
    case badRequest, unsupportedVersion, wrongShape, nonFinite, notFitted, unknownColumn, busy, unknownWorker
    case unknownJob, stale, tooLarge, noWorkers, internalError, unauthorized, wrongMode, nameInUse, diverged
    case limit, forbidden, unspecified

    init(_ code: Chimera_V1_ErrorCode) {
        self =
            switch code {
            case .badRequest: .badRequest
            case .unsupportedVersion: .unsupportedVersion
            case .wrongShape: .wrongShape
            case .nonFinite: .nonFinite
            case .notFitted: .notFitted
            case .unknownColumn: .unknownColumn
            case .busy: .busy
            case .unknownWorker: .unknownWorker
            case .unknownJob: .unknownJob
            case .stale: .stale
            case .tooLarge: .tooLarge
            case .noWorkers: .noWorkers
            case .internal: .internalError
            case .unauthorized: .unauthorized
            case .wrongMode: .wrongMode
            case .nameInUse: .nameInUse
            case .diverged: .diverged
            case .limit: .limit
            case .forbidden: .forbidden
            default: .unspecified
            }
    }
}
