import ChimeraTestSupport
import Testing
import ZeroMQ

@Suite("PUB → SUB")
struct PubSubTests {
    @Test("topic filtering after a slow-joiner handshake", arguments: Transport.allCases)
    func topicFiltering(transport: Transport) async throws {
        try await blocking {
            let endpoints = try EndpointFactory()
            let context = try Context()
            let pub = try testSocket(context, .pub)
            let endpoint = try pub.bind(endpoints.bindable(transport))
            let sub = try testSocket(context, .sub, timeoutMilliseconds: 10)
            try sub.subscribe(topic: "sync")
            try sub.subscribe(topic: "weights.")
            try sub.connect(endpoint)

            // A subscriber misses what was published before its subscription reached the publisher:
            // publish "sync" until one arrives, and only then send what matters.
            var synced = false
            for _ in 0..<1000 where !synced {
                try pub.send(string: "sync")
                synced = try sub.receive() != nil
            }
            #expect(synced)

            for topic in ["weights.a", "gradients.b", "weights.c", "weightless", "weights.end"] {
                try pub.send([try Frame(string: topic), try Frame(string: "payload of \(topic)")])
            }
            try sub.setReceiveTimeout(milliseconds: 10_000)
            var received: [String] = []
            while received.last != "weights.end" {
                let frames = try #require(try sub.receiveMultipart())
                if frames[0].string == "sync" { continue }
                #expect(frames.count == 2)
                #expect(frames[1].string == "payload of \(frames[0].string)")
                received.append(frames[0].string)
            }
            #expect(received == ["weights.a", "weights.c", "weights.end"])
        }
    }
}
