/// Help text, README tables and the OpenAPI schema, all written from the vocabulary.
extension FitVocabulary {
    /// `--help` text for the fit commands: one line per setting, grouped by mode.
    public static var helpText: String {
        var lines = ["Fit settings (also the HTTP fit body's fields, snake_case; `--no-X` turns a boolean off):"]
        for (title, mode) in [
            ("Parameter-server fits", FitMode.parameterServer), ("Bagging (aggregation) fits", .aggregation),
        ] {
            lines.append("")
            lines.append("\(title):")
            for setting in all where setting.modes.contains(mode) {
                lines.append("  \(setting.flag) <\(shortType(setting.type))> (default \(setting.defaultValue))")
                lines.append("      \(setting.help)")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func shortType(_ type: FitSettingType) -> String {
        switch type {
        case .integer: "integer"
        case .number: "number"
        case .boolean: "true|false"
        case .choice(let names, _): names.joined(separator: "|")
        case .text: "text"
        case .integerOrWord(_, let words, _): "integer|" + words.joined(separator: "|")
        case .integerList: "integers"
        }
    }

    /// README's table for one mode: flag, HTTP field, type, default, meaning.
    public static func markdownTable(mode: FitMode) -> String {
        var lines = ["| flag / HTTP field | type | default | meaning |", "|---|---|---|---|"]
        for setting in all where setting.modes.contains(mode) {
            let cells = [
                "`\(setting.flag)` / `\(setting.name)`", setting.type.expected, "`\(setting.defaultValue)`",
                setting.help.replacing("|", with: "\\|"),
            ]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// The JSON schema of the fit body (OpenAPI 3.0).
    public static var jsonSchema: [String: any Sendable] {
        var properties: [String: any Sendable] = [:]
        for setting in all {
            var schema: [String: any Sendable] = [
                "description": setting.help
                    + " (\(setting.modes.count == 2 ? "both modes" : setting.modes.first!.rawValue))",
                "default": setting.defaultValue.plain,
            ]
            switch setting.type {
            case .integer(let range):
                schema["type"] = "integer"
                schema["minimum"] = range.lowerBound
                if range.upperBound != Int.max { schema["maximum"] = range.upperBound }
            case .number(let range, let above, let below):
                schema["type"] = "number"
                if range.lowerBound > -.greatestFiniteMagnitude {
                    schema["minimum"] = range.lowerBound
                    if above { schema["exclusiveMinimum"] = true }
                }
                if range.upperBound < .greatestFiniteMagnitude {
                    schema["maximum"] = range.upperBound
                    if below { schema["exclusiveMaximum"] = true }
                }
            case .boolean:
                schema["type"] = "boolean"
            case .choice(let names, _):
                schema["type"] = "string"
                schema["enum"] = names
            case .text:
                schema["type"] = "string"
            case .integerOrWord(let range, let words, _):
                schema["oneOf"] = [
                    ["type": "integer", "minimum": range.lowerBound] as [String: any Sendable],
                    ["type": "string", "enum": words] as [String: any Sendable],
                ]
            case .integerList(let range, let count):
                schema["oneOf"] = [
                    [
                        "type": "array", "minItems": count.lowerBound, "maxItems": count.upperBound,
                        "items": ["type": "integer", "minimum": range.lowerBound, "maximum": range.upperBound]
                            as [String: any Sendable],
                    ] as [String: any Sendable],
                    ["type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"] as [String: any Sendable],
                ]
            }
            properties[setting.name] = schema
        }
        return ["type": "object", "properties": properties, "additionalProperties": false]
    }
}
