import ChimeraWire
import Foundation
import SwiftProtobuf
import Testing
import ZeroMQ

/// Builds raw frames by hand, the way a buggy or hostile peer could.
private func frames(
    header: [UInt8] = WireCodec.protocolFrame,
    body: ControlBody? = .gradientPush(Chimera_V1_GradientPush()),
    specs: [(String, Chimera_V1_DType, [UInt64])] = [],
    payloads: [[UInt8]] = []
) throws -> [Frame] {
    var control = Control()
    control.body = body
    control.tensors = specs.map { name, dtype, shape in
        var spec = Chimera_V1_TensorSpec()
        spec.name = name
        spec.dtype = dtype
        spec.shape = shape
        return spec
    }
    return [try Frame(header), try Frame(try control.serializedBytes() as [UInt8])]
        + (try payloads.map { try Frame($0) })
}

private func bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

private func decodeError(_ frames: [Frame], limits: WireLimits = .default) -> WireError? {
    do {
        _ = try WireCodec.decode(frames, limits: limits)
        return nil
    } catch {
        return error
    }
}

@Suite("Strict decoder: every defect is a typed error")
struct MalformedMessageTests {
    @Test("a first frame that is not the protocol frame")
    func notChimera() throws {
        #expect(decodeError(try frames(header: Array("GET / HTTP/1.1".utf8)))?.code == .notChimera)
        #expect(decodeError(try frames(header: []))?.code == .notChimera)
        #expect(decodeError(try frames(header: Array("CHIMERA".utf8)))?.code == .notChimera)
    }

    @Test("an unknown protocol version")
    func unsupportedVersion() throws {
        let error = decodeError(try frames(header: WireCodec.magic + [2]))
        #expect(error?.code == .unsupportedVersion)
        #expect(error?.replyCode == .unsupportedVersion)
    }

    @Test("missing frames")
    func missingFrames() throws {
        #expect(decodeError([])?.code == .missingFrames)
        #expect(decodeError([try Frame(WireCodec.protocolFrame)])?.code == .missingFrames)
    }

    @Test("a control frame that is not protobuf, or has no body")
    func malformedControl() throws {
        let garbage = [try Frame(WireCodec.protocolFrame), try Frame([0xFF, 0xFF, 0xFF, 0xFF, 0x0F])]
        #expect(decodeError(garbage)?.code == .malformedControl)
        #expect(decodeError(try frames(body: nil))?.code == .missingBody)
    }

    @Test("more or fewer tensor frames than declared")
    func frameCount() throws {
        let extra = try frames(payloads: [bytes([1])])
        #expect(decodeError(extra)?.code == .frameCountMismatch)
        let missing = try frames(specs: [("g", .float32, [2]), ("h", .float32, [2])], payloads: [bytes([1, 2])])
        #expect(decodeError(missing)?.code == .frameCountMismatch)
        let tooMany = try frames(specs: Array(repeating: ("g", .uint8, [1]), count: 3), payloads: [[1], [2], [3]])
        #expect(decodeError(tooMany, limits: WireLimits(maxTensors: 2))?.code == .frameCountMismatch)
    }

    @Test("a byte length that does not match shape × dtype")
    func sizeMismatch() throws {
        let short = try frames(specs: [("g", .float32, [3])], payloads: [bytes([1, 2])])
        let error = decodeError(short)
        #expect(error?.code == .sizeMismatch)
        #expect(error?.replyCode == .wrongShape)
        let ragged = try frames(specs: [("g", .float32, [2])], payloads: [bytes([1, 2]) + [0]])
        #expect(decodeError(ragged)?.code == .sizeMismatch)
        let overflow = try frames(specs: [("g", .float32, [UInt64.max / 2, 4])], payloads: [bytes([1])])
        #expect(decodeError(overflow)?.code == .invalidShape)
        let huge = try frames(specs: [("g", .float32, [UInt64.max])], payloads: [bytes([1])])
        #expect(decodeError(huge)?.code == .invalidShape)
    }

    @Test("an unknown or unspecified dtype")
    func unknownDType() throws {
        #expect(decodeError(try frames(specs: [("g", .unspecified, [1])], payloads: [[0]]))?.code == .unknownDType)
        #expect(
            decodeError(try frames(specs: [("g", .UNRECOGNIZED(99), [1])], payloads: [[0]]))?.code == .unknownDType)
    }

    @Test("a frame over the configured maximum")
    func frameTooLarge() throws {
        let big = try frames(specs: [("g", .float32, [1024])], payloads: [bytes(Array(repeating: 1, count: 1024))])
        let error = decodeError(big, limits: WireLimits(maxFrameBytes: 1000))
        #expect(error?.code == .frameTooLarge)
        #expect(error?.replyCode == .tooLarge)
        #expect(decodeError(big, limits: WireLimits(maxControlBytes: 2))?.code == .frameTooLarge)
        #expect(decodeError(big) == nil)
    }

    @Test("NaN or infinity where the message kind forbids it")
    func nonFinite() throws {
        for bad in [Float.nan, .infinity, -.infinity, .signalingNaN] {
            var values = Array(repeating: Float(1), count: 5000)
            values[4321] = bad
            let error = decodeError(try frames(specs: [("gradient", .float32, [5000])], payloads: [bytes(values)]))
            #expect(error?.code == .nonFinite)
            #expect(error?.message.contains("4321") == true)
        }
        // Past the C count's first 65,536-value block, and the last value of all.
        for index in [131_073, 199_999] {
            var values = Array(repeating: Float(-2.5), count: 200_000)
            values[index] = .nan
            #expect(Tensor.float32(values).firstNonFiniteIndex == index)
        }
        #expect(Tensor.float32(Array(repeating: 3, count: 200_000)).firstNonFiniteIndex == nil)
        let double = [1.0, .nan].withUnsafeBytes { Array($0) }
        #expect(decodeError(try frames(specs: [("w", .float64, [2])], payloads: [double]))?.code == .nonFinite)
        let half: [UInt8] = [0x00, 0x3C, 0x00, 0x7C]  // 1.0, +inf in float16
        #expect(decodeError(try frames(specs: [("w", .float16, [2])], payloads: [half]))?.code == .nonFinite)
        let bfloat: [UInt8] = [0x80, 0x3F, 0xC0, 0x7F]  // 1.0, NaN in bfloat16
        #expect(decodeError(try frames(specs: [("w", .bfloat16, [2])], payloads: [bfloat]))?.code == .nonFinite)
        // Largest finite values pass.
        let edge = bytes([.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude])
        #expect(decodeError(try frames(specs: [("w", .float32, [3])], payloads: [edge])) == nil)
    }

    @Test("predictions may carry non-finite values")
    func predictionsMayBeNonFinite() throws {
        let reply = try frames(
            body: .predictReply(Chimera_V1_PredictReply()), specs: [("y", .float32, [1])], payloads: [bytes([.nan])])
        #expect(decodeError(reply) == nil)
    }

    @Test("a ROUTER message without the empty delimiter")
    func routingEnvelope() throws {
        #expect(throws: WireError.self) { try WireCodec.splitRoutingEnvelope([try Frame(string: "id")]) }
        #expect(throws: WireError.self) {
            try WireCodec.splitRoutingEnvelope([try Frame(string: "id"), try Frame(string: "not empty")])
        }
    }

    @Test("every error names its metric label")
    func metricLabels() {
        #expect(WireError.Code.sizeMismatch.metricLabel == "size_mismatch")
        #expect(WireError.Code.notChimera.metricLabel == "not_chimera")
    }
}

@Suite("Generated code")
struct GeneratedCodeTests {
    @Test("the committed Swift was generated from the committed .proto")
    func stampMatchesProto() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let stamp = try String(
            contentsOf: root.appendingPathComponent("Sources/ChimeraWire/Generated/proto.sha256"), encoding: .utf8)
        let lines = stamp.split(separator: "\n").filter { !$0.isEmpty }
        #expect(!lines.isEmpty)
        for line in lines {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            let path = root.appendingPathComponent("proto").appendingPathComponent(String(parts[1]))
            #expect(try sha256(of: path) == String(parts[0]), "\(parts[1]) changed: run proto/generate.sh")
        }
    }
}

/// The file's SHA-256 in hex, from coreutils (what the generate script writes).
private func sha256(of file: URL) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["sha256sum", file.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: output, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
}
