internal import CZeroMQ

/// The ZeroMQ socket patterns Chimera uses.
public enum SocketType: Sendable, CaseIterable, CustomStringConvertible {
    case req, rep, router, dealer, pub, sub, push, pull, pair

    var rawValue: Int32 {
        switch self {
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .pair: ZMQ_PAIR
        }
    }

    public var description: String {
        switch self {
        case .req: "REQ"
        case .rep: "REP"
        case .router: "ROUTER"
        case .dealer: "DEALER"
        case .pub: "PUB"
        case .sub: "SUB"
        case .push: "PUSH"
        case .pull: "PULL"
        case .pair: "PAIR"
        }
    }
}
