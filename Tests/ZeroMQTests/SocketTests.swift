import ChimeraTestSupport
import Testing
import ZeroMQ

@Suite("Sockets, options, poller and errors")
struct SocketTests {
    @Test("binding tcp://127.0.0.1:* reads back the chosen port")
    func osChosenPort() throws {
        let context = try Context()
        let socket = try testSocket(context, .router)
        let endpoint = try socket.bind("tcp://127.0.0.1:*")
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        let port = Int(endpoint.split(separator: ":").last!) ?? 0
        #expect(port > 0 && port < 65536)
        #expect(try socket.lastEndpoint() == endpoint)
    }

    @Test("a failing call is a typed error naming errno and the function")
    func typedErrors() throws {
        let context = try Context()
        let socket = try testSocket(context, .rep)
        let badEndpoint = #expect(throws: ZMQError.self) { try socket.bind("nonsense://here") }
        #expect(badEndpoint?.function == "zmq_bind")
        #expect(badEndpoint?.detail == "nonsense://here")
        #expect((badEndpoint?.errno ?? 0) != 0)

        // REP must receive before it sends.
        let wrongState = #expect(throws: ZMQError.self) { try socket.send(string: "too early") }
        #expect(wrongState?.code == .wrongState)

        let key = #expect(throws: ZMQError.self) { try socket.setCurveServer(secretKey: "short") }
        #expect(key?.code == .invalidArgument)

        socket.close()
        #expect(socket.isClosed)
        let closed = #expect(throws: ZMQError.self) { try socket.bind("tcp://127.0.0.1:*") }
        #expect(closed?.code == .notASocket)
        socket.close()  // idempotent
    }

    @Test("options take their C widths")
    func options() throws {
        let context = try Context()
        let socket = try testSocket(context, .dealer)
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(100)
        try socket.setHeartbeat(intervalMilliseconds: 1000, timeoutMilliseconds: 3000, ttlMilliseconds: 5000)
        try socket.setMaxMessageSize(bytes: 1 << 30)
        try socket.setImmediate(true)
        try socket.setReconnectInterval(milliseconds: 50)
        try socket.setRoutingID(Array("worker-7".utf8))
        #expect(try socket.routingID() == Array("worker-7".utf8))
        let sub = try testSocket(context, .sub)
        try sub.subscribe()
        try sub.subscribe(topic: "a")
        try sub.unsubscribe(prefix: Array("a".utf8))
    }

    @Test("the poller reports which socket is readable")
    func poller() async throws {
        try await blocking {
            let context = try Context()
            let first = try testSocket(context, .pull)
            let second = try testSocket(context, .pull)
            let firstEndpoint = try first.bind("inproc://poll-first")
            let secondEndpoint = try second.bind("inproc://poll-second")
            let push = try testSocket(context, .push)
            try push.connect(secondEndpoint)
            _ = firstEndpoint

            var poller = Poller()
            try poller.add(first)
            try poller.add(second)
            #expect(try poller.poll(timeoutMilliseconds: 0) == [[], []])
            try push.send(string: "ready")
            let events = try poller.poll(timeoutMilliseconds: 10_000)
            #expect(events == [[], .readable])
            #expect(try second.pendingEvents().contains(.readable))
            #expect(try second.receive()?.string == "ready")
        }
    }

    @Test("the context reports libzmq's version and capabilities")
    func contextFacts() {
        let version = Context.version
        #expect(version.major == 4)
        #expect(Context.has("curve"))
        #expect(Context.has("ipc"))
    }
}
