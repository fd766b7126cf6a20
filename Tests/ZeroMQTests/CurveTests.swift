import ChimeraTestSupport
import Testing
import ZeroMQ

@Suite("CURVE security")
struct CurveTests {
    @Test("key pairs are Z85 and the public key derives from the secret")
    func keyPairs() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.utf8.count == 40 && pair.secretKey.utf8.count == 40)
        #expect(try CurveKeyPair.publicKey(forSecretKey: pair.secretKey) == pair.publicKey)
        #expect(try CurveKeyPair.generate() != pair)
        // A public key starting with "-" would read as an option after --curve-allow (1 in 85 did).
        for _ in 0..<1_000 {
            let key = try CurveKeyPair.generate()
            #expect(
                try !key.publicKey.hasPrefix("-")
                    && CurveKeyPair.publicKey(forSecretKey: key.secretKey) == key.publicKey)
        }
    }

    @Test("an allowed client talks; a client whose key is not allowed gets nothing through")
    func allowList() async throws {
        try await blocking {
            let context = try Context()
            let serverKeys = try CurveKeyPair.generate()
            let allowedKeys = try CurveKeyPair.generate()
            let strangerKeys = try CurveKeyPair.generate()
            let authenticator = try CurveAuthenticator(context: context, allowedClientKeys: [allowedKeys.publicKey])
            defer { authenticator.stop() }

            let server = try testSocket(context, .router, timeoutMilliseconds: 1_000)
            try server.setCurveServer(secretKey: serverKeys.secretKey)
            let endpoint = try server.bind("tcp://127.0.0.1:*")

            // Separate client context: a real peer would be another process.
            let clientContext = try Context()
            let stranger = try testSocket(clientContext, .req, timeoutMilliseconds: 1_000)
            try stranger.setCurveClient(serverPublicKey: serverKeys.publicKey, keyPair: strangerKeys)
            try stranger.connect(endpoint)
            try stranger.send(string: "let me in")

            let plain = try testSocket(clientContext, .req, timeoutMilliseconds: 1_000)
            try plain.connect(endpoint)
            try plain.send(string: "no keys at all")

            let allowed = try testSocket(clientContext, .req, timeoutMilliseconds: 10_000)
            try allowed.setCurveClient(serverPublicKey: serverKeys.publicKey, keyPair: allowedKeys)
            try allowed.connect(endpoint)
            try allowed.send(string: "hello")

            // The allowed request arrives; the stranger's and the plain one never do.
            var bodies: [String] = []
            while let frames = try server.receiveMultipart() {
                bodies.append(frames[2].string)
                if frames[2].string == "hello" {
                    try server.send([frames[0], Frame(), try Frame(string: "welcome")])
                }
            }
            #expect(bodies == ["hello"])
            #expect(try allowed.receive()?.string == "welcome")
            #expect(authenticator.admittedCount >= 1)
            #expect(authenticator.deniedCount >= 1)
        }
    }
}
