import ChimeraWire
import ZeroMQ

/// A worker's sockets to a sharded job's parameter servers, one DEALER each: a round's pushes and
/// pulls go to every server at once and their replies are read as they come.
final class ShardLinks {
    struct Server {
        let endpoint: String
        let range: Range<Int>
        let socket: Socket
    }

    let servers: [Server]
    private var nextRequestID: UInt64 = 1

    init(context: Context, shards: [Chimera_V1_ServerShard], curve: CurveClientSettings?, weightCount: Int) throws {
        var servers: [Server] = []
        var expected = 0
        for shard in shards.sorted(by: { $0.start < $1.start }) {
            guard Int(shard.start) == expected, shard.end > shard.start, Int(shard.end) <= weightCount else {
                throw ClusterError("the job's server ranges do not cover the model's \(weightCount) parameters")
            }
            expected = Int(shard.end)
            let socket = try context.socket(.dealer)
            try socket.setLinger(milliseconds: 0)
            if let curve {
                try CurveClientSettings(serverPublicKey: shard.publicKey, keyPair: curve.keyPair).apply(to: socket)
            }
            try socket.connect(shard.endpoint)
            servers.append(Server(endpoint: shard.endpoint, range: Int(shard.start)..<Int(shard.end), socket: socket))
        }
        guard expected == weightCount else {
            throw ClusterError("the job's server ranges cover \(expected) of the model's \(weightCount) parameters")
        }
        self.servers = servers
    }

    deinit { for server in servers { server.socket.close() } }

    /// A server's reply: weights read by the round codec, or any message the generic way.
    enum Reply {
        case weights(RoundCodec.Message<Chimera_V1_Weights>)
        case message(WireMessage)
    }

    /// Sends one request to every server (`write` writes server i's frames after the empty
    /// delimiter) and hands each reply to `read` as it arrives. False when some server did not
    /// answer within `timeout` ms or `abandon` said to stop waiting.
    func exchange(
        timeout: Int32, abandon: () -> Bool, write: (Int, Socket, UInt64) throws -> Void,
        read: (Int, Reply) throws -> Void
    ) throws -> Bool {
        let requestID = nextRequestID
        nextRequestID += 1
        for (index, server) in servers.enumerated() {
            try server.socket.send(copying: UnsafeRawBufferPointer(start: nil, count: 0), more: true)
            try write(index, server.socket, requestID)
        }
        var pending = Set(servers.indices)
        var poller = Poller()
        for server in servers { try poller.add(server.socket) }
        var waited: Int32 = 0
        while !pending.isEmpty {
            let ready = try poller.poll(timeoutMilliseconds: 100)
            if ready.allSatisfy({ $0.isEmpty }) {
                waited += 100
                if waited >= timeout || abandon() { return false }
                continue
            }
            for index in servers.indices where ready[index].contains(.readable) {
                while let frames = try servers[index].socket.receiveMultipart(dontWait: true) {
                    // Replies to an earlier, abandoned exchange are stale: skipped by request id.
                    guard frames.count >= 2, frames[0].count == 0 else { continue }
                    let reply: Reply
                    if let weights = RoundCodec.decodeWeights(frames[1...]) {
                        guard weights.requestID == requestID else { continue }
                        reply = .weights(weights)
                    } else {
                        let message = try WireCodec.decode(frames[1...])
                        guard message.control.requestID == requestID else { continue }
                        reply = .message(message)
                    }
                    pending.remove(index)
                    try read(index, reply)
                }
            }
        }
        return true
    }
}
