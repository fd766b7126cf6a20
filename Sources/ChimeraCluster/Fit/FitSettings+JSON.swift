public import Foundation

extension FitSettings {
    /// A fit body: a JSON object of settings. Unknown fields, wrong types and out-of-range values are
    /// errors naming the field; an empty body is all defaults.
    public static func parse(json data: Data) throws(FitSettingError) -> FitSettings {
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return FitSettings() }
        let object: [String: JSONScalar]
        do {
            object = try JSONDecoder().decode([String: JSONScalar].self, from: data)
        } catch {
            if (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil {
                throw FitSettingError(.malformed, setting: "(body)", "the fit body must be a JSON object of settings")
            }
            throw FitSettingError(.malformed, setting: "(body)", "the fit body is not valid JSON")
        }
        var settings = FitSettings()
        for key in object.keys.sorted() {
            try settings.set(key, object[key]!.input, spelling: .field)
        }
        return settings
    }
}

/// One JSON value, kept with its JSON type so that `"5"` for an integer setting is a type error.
struct JSONScalar: Decodable {
    let input: FitInput

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            input = .unsupported("null")
        } else if let value = try? container.decode(Bool.self) {
            input = .boolean(value)
        } else if let value = try? container.decode(Int.self) {
            input = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            input = .number(value)
        } else if let value = try? container.decode(String.self) {
            input = .text(value)
        } else if let list = try? container.decode([Int].self) {
            input = .integers(list)
        } else if (try? container.decode([JSONScalar].self)) != nil {
            input = .unsupported("an array")
        } else {
            input = .unsupported("an object")
        }
    }
}
