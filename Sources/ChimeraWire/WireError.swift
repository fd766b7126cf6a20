/// A message that does not follow the wire protocol. Decoding never traps: every defect is one of these.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of defect; opaque so new kinds can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: String, Hashable, Sendable {
            case notChimera = "not a Chimera message"
            case unsupportedVersion = "unsupported protocol version"
            case missingFrames = "missing frames"
            case frameCountMismatch = "frame count mismatch"
            case malformedControl = "malformed control frame"
            case missingBody = "control frame has no body"
            case unknownDType = "unknown dtype"
            case invalidShape = "invalid shape"
            case sizeMismatch = "tensor size mismatch"
            case frameTooLarge = "frame too large"
            case nonFinite = "non-finite value"
            case missingTensor = "missing tensor"
            case wrongTensor = "wrong tensor"
            case badRoutingEnvelope = "bad routing envelope"
            case unexpectedBody = "unexpected message"
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        public static let notChimera = Code(.notChimera)
        public static let unsupportedVersion = Code(.unsupportedVersion)
        public static let missingFrames = Code(.missingFrames)
        public static let frameCountMismatch = Code(.frameCountMismatch)
        public static let malformedControl = Code(.malformedControl)
        public static let missingBody = Code(.missingBody)
        public static let unknownDType = Code(.unknownDType)
        public static let invalidShape = Code(.invalidShape)
        public static let sizeMismatch = Code(.sizeMismatch)
        public static let frameTooLarge = Code(.frameTooLarge)
        public static let nonFinite = Code(.nonFinite)
        public static let missingTensor = Code(.missingTensor)
        public static let wrongTensor = Code(.wrongTensor)
        public static let badRoutingEnvelope = Code(.badRoutingEnvelope)
        public static let unexpectedBody = Code(.unexpectedBody)

        public var description: String { kind.rawValue }
        /// A stable identifier for metrics labels, e.g. `size_mismatch`.
        public var metricLabel: String {
            String(describing: kind).reduce(into: "") { out, c in
                if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
            }
        }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The protocol error code to put into an `Error` reply for this defect.
    public var replyCode: Chimera_V1_ErrorCode {
        switch code {
        case .unsupportedVersion: .unsupportedVersion
        case .nonFinite: .nonFinite
        case .frameTooLarge: .tooLarge
        case .sizeMismatch, .invalidShape, .wrongTensor: .wrongShape
        default: .badRequest
        }
    }
}
