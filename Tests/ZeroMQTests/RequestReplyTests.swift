import ChimeraTestSupport
import Testing
import ZeroMQ

@Suite("REQ → ROUTER and DEALER → ROUTER")
struct RequestReplyTests {
    @Test("ROUTER replies to each REQ by its routing id", arguments: Transport.allCases)
    func routerRepliesByRoutingID(transport: Transport) async throws {
        try await blocking {
            let endpoints = try EndpointFactory()
            let context = try Context()
            let router = try testSocket(context, .router)
            try router.setRouterMandatory(true)
            let endpoint = try router.bind(endpoints.bindable(transport))

            let clients = try (0..<3).map { index in
                let client = try testSocket(context, .req)
                try client.setRoutingID(Array("client-\(index)".utf8))
                try client.connect(endpoint)
                return client
            }
            for (index, client) in clients.enumerated() {
                try client.send(string: "question \(index)")
            }
            for _ in clients {
                let frames = try #require(try router.receiveMultipart())
                // REQ adds an empty delimiter: [routing id][empty][body]
                #expect(frames.count == 3)
                #expect(frames[1].count == 0)
                let id = frames[0].string
                let body = frames[2].string
                #expect(body == "question \(id.split(separator: "-").last!)")
                try router.send([try Frame(string: id), Frame(), try Frame(string: "answer for \(id)")])
            }
            for (index, client) in clients.enumerated() {
                let reply = try #require(try client.receive())
                #expect(reply.string == "answer for client-\(index)")
            }
        }
    }

    @Test("ROUTER_MANDATORY reports an unknown peer as a typed error")
    func routerMandatoryUnknownPeer() async throws {
        try await blocking {
            let context = try Context()
            let router = try testSocket(context, .router)
            try router.setRouterMandatory(true)
            try router.bind("tcp://127.0.0.1:*")
            let error = #expect(throws: ZMQError.self) {
                try router.send([try Frame(string: "nobody"), Frame(), try Frame(string: "x")])
            }
            #expect(error?.code == .hostUnreachable)
            #expect(error?.function == "zmq_msg_send")
        }
    }

    @Test("DEALER keeps several requests in flight and matches replies", arguments: Transport.allCases)
    func dealerPipelinesRequests(transport: Transport) async throws {
        try await blocking {
            let endpoints = try EndpointFactory()
            let context = try Context()
            let router = try testSocket(context, .router)
            let endpoint = try router.bind(endpoints.bindable(transport))
            let dealer = try testSocket(context, .dealer)
            try dealer.connect(endpoint)

            let count = 5
            for index in 0..<count {
                // A DEALER speaking to a REQ-style ROUTER sends the empty delimiter itself.
                try dealer.send([Frame(), try Frame(string: "request \(index)")])
            }
            var pending: [(id: [UInt8], body: String)] = []
            for _ in 0..<count {
                let frames = try #require(try router.receiveMultipart())
                #expect(frames.count == 3)
                pending.append((frames[0].bytes, frames[2].string))
            }
            #expect(pending.map(\.body) == (0..<count).map { "request \($0)" })
            // Answer out of order: the DEALER must still get every reply, in the order sent.
            for request in pending.reversed() {
                try router.send([try Frame(request.id), Frame(), try Frame(string: "reply to \(request.body)")])
            }
            var replies: [String] = []
            for _ in 0..<count {
                let frames = try #require(try dealer.receiveMultipart())
                #expect(frames.count == 2 && frames[0].count == 0)
                replies.append(frames[1].string)
            }
            #expect(replies == (0..<count).reversed().map { "reply to request \($0)" })
        }
    }

    @Test("receive returns nil when the timeout passes")
    func receiveTimeout() async throws {
        try await blocking {
            let context = try Context()
            let pull = try testSocket(context, .pull, timeoutMilliseconds: 20)
            try pull.bind("tcp://127.0.0.1:*")
            #expect(try pull.receive() == nil)
            #expect(try pull.receive(dontWait: true) == nil)
            #expect(try pull.receiveMultipart() == nil)
        }
    }
}

@Suite("Receiving into reused frames")
struct ReusedFramesTests {
    @Test(
        "messages of any length arrive whole into one array; frames nobody holds are reused, held ones never overwritten"
    )
    func reuse() async throws {
        try await blocking {
            let endpoints = try EndpointFactory()
            let context = try Context()
            let pull = try testSocket(context, .pull)
            let endpoint = try pull.bind(endpoints.bindable(.inproc))
            let push = try testSocket(context, .push)
            try push.connect(endpoint)
            var frames: [Frame] = []
            #expect(try pull.receiveMultipart(into: &frames, dontWait: true) == false)
            var held: [Frame] = []
            var heldText: [String] = []
            var reused = 0
            for round in 0..<200 {
                let parts = (0..<(1 + round % 5)).map {
                    "m\(round)-p\($0)-" + String(repeating: "x", count: round % 70)
                }
                for (index, part) in parts.enumerated() {
                    Array(part.utf8).withUnsafeBytes { bytes in
                        try! push.send(copying: bytes, more: index < parts.count - 1)
                    }
                }
                let before = frames.map(ObjectIdentifier.init)
                #expect(try pull.receiveMultipart(into: &frames))
                #expect(frames.map(\.string) == parts)
                reused += zip(before, frames.map(ObjectIdentifier.init)).filter { $0 == $1 }.count
                if round % 7 == 0 {
                    held.append(frames[0])
                    heldText.append(parts[0])
                }
            }
            #expect(held.map(\.string) == heldText, "a frame kept by the caller is never received into again")
            #expect(reused > 200, "unheld frames are reused (\(reused))")
        }
    }
}
