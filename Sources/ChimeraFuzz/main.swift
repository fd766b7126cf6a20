import ChimeraPredictBody
import ChimeraWire
import Foundation
import SwiftProtobuf
import ZeroMQ

// A seeded mutation fuzzer for what a peer controls: the wire decoders (generic codec, round codec,
// routing envelope) and the gateway's predict-body reader. Valid messages of every kind are mutated
// (bit flips, interesting bytes, insertions, deletions, truncation, frames dropped, duplicated,
// swapped or spliced from another message) and decoded. A crash fails the run, and so does a
// broken invariant: the round codec is a shortcut, never a second definition of the protocol, so
// whatever it accepts the generic codec must accept with the same fields.
//
//   chimera-fuzz [--seconds 60] [--seed N]

var seconds = 60.0
var seed: UInt64 = UInt64(Date().timeIntervalSince1970)
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "--seconds": seconds = Double(arguments.popFirst() ?? "") ?? seconds
    case "--seed": seed = UInt64(arguments.popFirst() ?? "") ?? seed
    default:
        FileHandle.standardError.write(Data("usage: chimera-fuzz [--seconds S] [--seed N]\n".utf8))
        exit(2)
    }
}

struct Random {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
}

func bytes(_ frames: [Frame]) -> [[UInt8]] { frames.map(\.bytes) }

/// Valid messages of every kind, as frames' bytes.
func seedMessages() throws -> [[[UInt8]]] {
    var seeds: [[[UInt8]]] = []
    func add(_ body: ControlBody, _ tensors: [NamedTensor] = []) throws {
        seeds.append(bytes(try WireCodec.encode(WireMessage(body, requestID: 7, tensors: tensors))))
    }
    var hello = Chimera_V1_WorkerHello()
    hello.name = "worker-1"
    hello.rows = 100
    hello.featureNames = ["a", "b", "c"]
    hello.labelValues = [0, 1]
    try add(
        .hello(hello),
        [NamedTensor("column_sum", .float64([1, 2, 3])), NamedTensor("column_sum_of_squares", .float64([4, 5, 6]))])
    var welcome = Chimera_V1_Welcome()
    welcome.workerID = 3
    welcome.session = 0xDEAD_BEEF
    welcome.currentJob.jobID = 2
    welcome.currentJob.featureNames = ["a", "b"]
    try add(.welcome(welcome))
    try add(
        .heartbeat(
            Chimera_V1_Heartbeat.with {
                $0.workerID = 1; $0.session = 9; $0.clock = 4
            }))
    try add(
        .subscriptionReady(
            Chimera_V1_SubscriptionReady.with {
                $0.workerID = 1; $0.syncSequence = 3
            }))
    try add(
        .weightPull(
            Chimera_V1_WeightPull.with {
                $0.workerID = 1; $0.jobID = 2; $0.clock = 3; $0.session = 5
            }))
    try add(
        .goodbye(
            Chimera_V1_WorkerGoodbye.with {
                $0.workerID = 1; $0.reason = "bye"
            }))
    try add(
        .workerResult(
            Chimera_V1_WorkerResult.with {
                $0.workerID = 1; $0.jobID = 2
            }), [NamedTensor("tree.0", .bytes(Array("CHTR\u{1}tree".utf8)))])
    try add(
        .memberPrediction(
            Chimera_V1_MemberPrediction.with {
                $0.workerID = 1; $0.taskID = 3
            }), [NamedTensor("means", .float32([0.5, 0.5], shape: [1, 2]))])
    var fit = Chimera_V1_FitRequest()
    fit.config.maxIterations = 10
    fit.config.eta0 = 0.5
    fit.config.staleness = 2
    try add(.fitRequest(fit))
    var predict = Chimera_V1_PredictRequest()
    predict.columns = ["a", "b"]
    try add(.predictRequest(predict), [NamedTensor("x", .float32([1, 2, 3, 4], shape: [2, 2]))])
    try add(.statusRequest(Chimera_V1_StatusRequest()))
    try add(
        .cancelJob(
            Chimera_V1_CancelJob.with {
                $0.jobID = 4; $0.jobToken = 77
            }))
    try add(
        .jobStart(
            Chimera_V1_JobStart.with {
                $0.jobID = 1; $0.featureNames = ["a"]; $0.classes = [0, 1]
            }), [NamedTensor("mean", .float32([0])), NamedTensor("scale", .float32([1]))])
    try add(
        .error(
            Chimera_V1_Error.with {
                $0.code = .badRequest; $0.message = "no"
            }))
    try add(.sync(Chimera_V1_Sync.with { $0.sequence = 9 }))
    var push = Chimera_V1_GradientPush()
    push.workerID = 2
    push.session = 0x1234_5678
    push.jobID = 1
    push.clock = 5
    push.rows = 50
    push.loss = 0.69
    push.thenPull = true
    let update: [Float] = [0.1, -0.2, 0.3, 0.4, 0.5, -0.6]
    seeds.append(
        bytes(
            try update.withUnsafeBufferPointer {
                try RoundCodec.encode(push, requestID: 11, update: $0, outputs: 2, stride: 3)
            }))
    var weights = Chimera_V1_Weights()
    weights.jobID = 1
    weights.version = 3
    seeds.append(
        bytes(
            try update.withUnsafeBufferPointer {
                try RoundCodec.encode(weights, requestID: 12, weights: $0, outputs: 1, stride: 6)
            }))
    return seeds
}

let interesting: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x1A, 0x22]

func mutate(_ message: [[UInt8]], _ seeds: [[[UInt8]]], _ random: inout Random) -> [[UInt8]] {
    var frames = message
    for _ in 0..<(1 + random.below(4)) {
        if frames.isEmpty { frames = [[]] }
        let f = random.below(frames.count)
        switch random.below(10) {
        case 0 where !frames[f].isEmpty:
            let i = random.below(frames[f].count)
            frames[f][i] ^= UInt8(1 << random.below(8))
        case 1 where !frames[f].isEmpty:
            frames[f][random.below(frames[f].count)] = interesting[random.below(interesting.count)]
        case 2:
            let at = random.below(frames[f].count + 1)
            frames[f].insert(
                contentsOf: (0..<(1 + random.below(8))).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
        case 3 where !frames[f].isEmpty:
            let start = random.below(frames[f].count)
            frames[f].removeSubrange(start..<min(frames[f].count, start + 1 + random.below(8)))
        case 4: frames[f] = Array(frames[f].prefix(random.below(frames[f].count + 1)))
        case 5: frames.remove(at: f)
        case 6: frames.insert(frames[f], at: random.below(frames.count + 1))
        case 7 where frames.count > 1: frames.swapAt(f, random.below(frames.count))
        case 8:
            let other = seeds[random.below(seeds.count)]
            if let piece = other.randomElement(using: &random) {
                frames.insert(piece, at: random.below(frames.count + 1))
            }
        default:
            // A varint-ish field made huge: length prefixes and counts.
            if !frames[f].isEmpty { frames[f][random.below(frames[f].count)] = 0xFF }
        }
    }
    return frames
}

extension Random: RandomNumberGenerator {}

/// Decodes one mutated message every way a peer's message is decoded; false when an invariant broke.
func checkFrames(_ raw: [[UInt8]]) throws -> (accepted: Bool, ok: Bool) {
    let frames = try raw.map { try Frame($0) }
    var ok = true
    let generic = try? WireCodec.decode(frames)
    if let push = RoundCodec.decodePush(frames[...]) {
        guard case .gradientPush(let body)? = generic?.body else { return (true, false) }
        ok = ok && body == push.body && generic?.control.requestID == push.requestID
    }
    if let weights = RoundCodec.decodeWeights(frames[...]) {
        guard case .weights(let body)? = generic?.body else { return (true, false) }
        ok = ok && body == weights.body && generic?.control.requestID == weights.requestID
    }
    // As the master's ROUTER sees it: an identity and a delimiter before the message.
    let routed = [try Frame([0, 1, 2, 3, 4])] + (try raw.map { try Frame($0) })
    if let (_, payload) = try? WireCodec.splitRoutingEnvelope(routed) { _ = try? WireCodec.decode(payload) }
    return (generic != nil, ok)
}

let seedBodies: [String] = [
    #"{"X_pred_columns": ["a", "b", "c"], "X_pred_rows": [[1.5, -2, 3e-4], [0, 1, 2]]}"#,
    #"{"X_pred_rows": [[true, "1.25", 7]], "X_pred_columns": ["x", "y", "z"], "probabilities": true, "other": {"k": [1, null]}}"#,
    #"{"X_pred_columns": ["\u00e9t\u00e9", "b\"q"], "X_pred_rows": [[1e308, -1e-308], [123456789012, 0.000001]], "fan_out": false}"#,
    #"{"X_pred_columns":[],"X_pred_rows":[]}"#,
]

var random = Random(state: seed)
let seeds = try seedMessages()
let bodies = seedBodies.map { Array($0.utf8) }
var frameRuns = 0
var frameAccepted = 0
var bodyRuns = 0
var bodyAccepted = 0
let started = Date()
print("chimera-fuzz: seed \(seed), \(seconds) s, \(seeds.count) seed messages, \(bodies.count) seed bodies")
while Date().timeIntervalSince(started) < seconds {
    for _ in 0..<200 {
        let mutated = mutate(seeds[random.below(seeds.count)], seeds, &random)
        let (accepted, ok) = try checkFrames(mutated)
        frameRuns += 1
        if accepted { frameAccepted += 1 }
        if !ok {
            print(
                "chimera-fuzz: the round codec and the generic codec disagree on frames \(mutated.map { $0.map { String(format: "%02x", $0) }.joined() })"
            )
            exit(1)
        }
        var body = mutate([bodies[random.below(bodies.count)]], [bodies], &random).first ?? []
        if random.below(4) == 0 { body += Array(body.prefix(random.below(body.count + 1))) }
        if let read = try? readPredictBody(body, split: random.below(2) == 0) {
            bodyAccepted += 1
            if read.rows < 0 || read.columns < 0 {
                print("chimera-fuzz: impossible predict body \(read) from \(String(decoding: body, as: UTF8.self))")
                exit(1)
            }
        }
        bodyRuns += 1
    }
}
print(
    "chimera-fuzz: \(frameRuns) mutated messages (\(frameAccepted) decoded, the rest refused), \(bodyRuns) mutated predict bodies (\(bodyAccepted) read); no crash, no disagreement"
)
