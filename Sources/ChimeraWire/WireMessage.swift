/// Shorter names for the generated control messages used everywhere.
public typealias Control = Chimera_V1_Control
public typealias ControlBody = Chimera_V1_Control.OneOf_Body

/// One protocol message: the control frame and the tensors that follow it.
public struct WireMessage {
    /// The control message. Its `tensors` specs are written by the encoder from `tensors`.
    public var control: Control
    public var tensors: [NamedTensor]

    public init(_ body: ControlBody, requestID: UInt64 = 0, tensors: [NamedTensor] = []) {
        control = Control()
        control.body = body
        control.requestID = requestID
        self.tensors = tensors
    }

    public init(control: Control, tensors: [NamedTensor] = []) {
        self.control = control
        self.tensors = tensors
    }

    public var body: ControlBody? { control.body }

    /// The tensor called `name`, or a `missingTensor` error naming it.
    public func tensor(named name: String) throws(WireError) -> Tensor {
        guard let found = tensors.first(where: { $0.name == name }) else {
            throw WireError(.missingTensor, "message \(control.body?.kindName ?? "?") has no tensor \"\(name)\"")
        }
        return found.tensor
    }

    /// The tensor called `name`, checked to be `dtype` with `shape`.
    public func tensor(named name: String, dtype: DType, shape: [Int]) throws(WireError) -> Tensor {
        let tensor = try tensor(named: name)
        guard tensor.dtype == dtype, tensor.shape == shape else {
            throw WireError(
                .wrongTensor,
                "tensor \"\(name)\" is \(tensor.dtype) \(tensor.shape), expected \(dtype) \(shape)"
            )
        }
        return tensor
    }
}

extension ControlBody {
    /// The body's field name in the .proto, for errors and metrics.
    public var kindName: String {
        switch self {
        case .hello: "hello"
        case .heartbeat: "heartbeat"
        case .subscriptionReady: "subscription_ready"
        case .gradientPush: "gradient_push"
        case .weightPull: "weight_pull"
        case .workerResult: "worker_result"
        case .goodbye: "goodbye"
        case .memberPrediction: "member_prediction"
        case .stageMessage: "stage_message"
        case .partialMargins: "partial_margins"
        case .serverHello: "server_hello"
        case .serverWelcome: "server_welcome"
        case .serverPoll: "server_poll"
        case .serverEvents: "server_events"
        case .serverRange: "server_range"
        case .margins: "margins"
        case .memberPredict: "member_predict"
        case .welcome: "welcome"
        case .ack: "ack"
        case .jobStart: "job_start"
        case .jobStop: "job_stop"
        case .weights: "weights"
        case .sync: "sync"
        case .shutdown: "shutdown"
        case .fitRequest: "fit_request"
        case .fitReply: "fit_reply"
        case .predictRequest: "predict_request"
        case .predictReply: "predict_reply"
        case .statusRequest: "status_request"
        case .clusterStatus: "cluster_status"
        case .jobStatusRequest: "job_status_request"
        case .jobStatus: "job_status"
        case .cancelJob: "cancel_job"
        case .error: "error"
        }
    }

    /// Whether this is a client's request (fit, predict, status, job status, cancel), answered on the
    /// control endpoint; everything else a master receives comes from workers.
    public var isControlRequest: Bool {
        switch self {
        case .fitRequest, .predictRequest, .statusRequest, .jobStatusRequest, .cancelJob: true
        default: false
        }
    }

    /// Whether this is a parameter server's message to the master.
    public var isServerMessage: Bool {
        switch self {
        case .serverHello, .serverPoll, .serverRange: true
        default: false
        }
    }

    /// Whether float tensors of this kind must hold only finite values. Updates, weights and inputs
    /// must: one NaN would poison the model. Predictions may carry what a diverged model produced;
    /// a pipeline stage's overflowed activations travel on, so that the loss says the fit diverged.
    public var requiresFiniteTensors: Bool {
        switch self {
        case .predictReply, .error, .jobStatus, .fitReply, .stageMessage: false
        default: true
        }
    }
}

extension WireMessage {
    /// An `Error` reply.
    public static func error(_ code: Chimera_V1_ErrorCode, _ message: String, requestID: UInt64 = 0) -> WireMessage {
        var error = Chimera_V1_Error()
        error.code = code
        error.message = message
        return WireMessage(.error(error), requestID: requestID)
    }
}
