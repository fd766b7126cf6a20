import Foundation
import Testing

@testable import ChimeraML

@Suite("Packed float arrays in model files")
struct PackedFloatsTests {
    struct Holder: Codable, Equatable {
        @PackedFloats var values: [Float]
    }

    @Test("long arrays round-trip as base64 of float32, short ones stay JSON numbers; both forms load")
    func roundTrip() throws {
        let long =
            (0..<1_001).map { Float($0) * 0.37 - 100 } + [.greatestFiniteMagnitude, -0.0, .leastNonzeroMagnitude]
        let short: [Float] = [1.5, -2, 0.25]
        for values in [long, short, []] {
            let data = try JSONEncoder().encode(Holder(values: values))
            let back = try JSONDecoder().decode(Holder.self, from: data)
            #expect(back.values.map(\.bitPattern) == values.map(\.bitPattern))
            let text = String(decoding: data, as: UTF8.self)
            #expect(text.contains("\"values\":\"") == (values.count >= 256), "\(text.prefix(40))")
        }
        // Files written before packing existed: a plain array.
        let old = try JSONDecoder().decode(Holder.self, from: Data(#"{"values": [1, 2.5]}"#.utf8))
        #expect(old.values == [1, 2.5])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Holder.self, from: Data(#"{"values": "not base64!"}"#.utf8))
        }
        #expect(Base64.encode(Array("Man".utf8)) == "TWFu" && Base64.encode(Array("Ma".utf8)) == "TWE=")
        #expect(Base64.encode(Array("M".utf8)) == "TQ==" && Base64.decode("TQ==") == Array("M".utf8))
        #expect(Base64.decode("TWE=") == Array("Ma".utf8) && Base64.decode("T=E=") == nil)
    }
}
