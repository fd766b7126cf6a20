package import ChimeraWire

/// The settings a user gave for one fit (the rest take the vocabulary's defaults).
public struct FitSettings: Sendable, Equatable {
    /// Only what was given explicitly, by setting name.
    public private(set) var given: [String: FitValue] = [:]

    public init() {}

    /// The value of a setting: given, or its default.
    public subscript(_ name: String) -> FitValue? {
        given[name] ?? FitVocabulary.setting(name)?.defaultValue
    }

    /// Sets one setting from any front end; `spelling` decides how errors name it.
    public mutating func set(_ name: String, _ input: FitInput, spelling: FitSpelling) throws(FitSettingError) {
        guard let setting = FitVocabulary.setting(name) else {
            let shown = spelling == .flag ? "--\(name)" : name
            var message = "unknown fit setting \(shown)"
            if let close = FitVocabulary.suggestion(for: name) { message += " (did you mean \(spelling.name(close))?)" }
            throw FitSettingError(.unknown, setting: name, message)
        }
        given[name] = try setting.parse(input, spelling: spelling)
    }

    /// Sets an already-parsed value (a sweep's grid point); the value must suit the setting.
    public mutating func set(_ name: String, value: FitValue) throws(FitSettingError) {
        try set(name, FitInput(value), spelling: .field)
    }

    /// Throws if a given setting does not belong to `mode` (a tree setting on a parameter-server fit).
    public func check(mode: FitMode, spelling: FitSpelling) throws(FitSettingError) {
        for setting in FitVocabulary.all {
            guard let value = given[setting.name] else { continue }
            let shown = spelling.name(setting.name)
            guard setting.modes.contains(mode) else {
                let other = setting.modes.contains(.aggregation) ? "bagging (aggregation)" : "parameter-server"
                throw FitSettingError(
                    .wrongMode, setting: setting.name,
                    "\(shown) is a setting of \(other) fits; this master runs \(mode.rawValue) fits")
            }
            if let problem = setting.checkMode?(value, mode) {
                throw FitSettingError(.wrongMode, setting: setting.name, "\(shown): \(problem)")
            }
        }
    }

    /// The wire message for a fit in `mode`: every setting of the mode, given or default.
    package func wire(mode: FitMode) throws(FitSettingError) -> Chimera_V1_FitConfig {
        try check(mode: mode, spelling: .field)
        var wire = Chimera_V1_FitConfig()
        for setting in FitVocabulary.all where setting.modes.contains(mode) {
            setting.apply(self[setting.name] ?? setting.defaultValue, &wire)
        }
        return wire
    }

    /// The settings given, as a JSON or YAML mapping (what `chimera http fit` sends).
    public var body: [String: any Sendable] { given.mapValues(\.plain) }
}

extension FitInput {
    init(_ value: FitValue) {
        switch value {
        case .integer(let v): self = .integer(v)
        case .number(let v): self = .number(v)
        case .boolean(let v): self = .boolean(v)
        case .text(let v): self = .text(v)
        }
    }
}

// MARK: - Front ends

extension FitSettings {
    /// Parses `--name value`, `--name=value`, `--flag`/`--no-flag` (booleans) command-line words.
    public static func parse(arguments: [String]) throws(FitSettingError) -> FitSettings {
        var settings = FitSettings()
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            guard word.hasPrefix("--"), word.count > 2 else {
                throw FitSettingError(
                    .malformed, setting: word, "unexpected argument \"\(word)\" (fit settings are --name value)")
            }
            var name = String(word.dropFirst(2))
            var inline: String?
            if let equals = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            var key = name.replacing("-", with: "_")
            var negated = false
            if FitVocabulary.setting(key) == nil, key.hasPrefix("no_"),
                let setting = FitVocabulary.setting(String(key.dropFirst(3))),
                case .boolean = setting.type, inline == nil
            {
                key = setting.name
                negated = true
            }
            guard let setting = FitVocabulary.setting(key) else {
                var message = "unknown option --\(name)"
                if let close = FitVocabulary.suggestion(for: key) {
                    message += " (did you mean \(FitSpelling.flag.name(close))?)"
                }
                throw FitSettingError(.unknown, setting: name, message)
            }
            if case .boolean = setting.type, inline == nil {
                // `--raw-features` alone is true; `--raw-features false` is taken too.
                if !negated, index < arguments.count, ["true", "false"].contains(arguments[index].lowercased()) {
                    try settings.set(key, .commandLine(arguments[index]), spelling: .flag)
                    index += 1
                } else {
                    try settings.set(key, .boolean(!negated), spelling: .flag)
                }
                continue
            }
            if let inline {
                try settings.set(key, .commandLine(inline), spelling: .flag)
                continue
            }
            guard index < arguments.count else {
                throw FitSettingError(
                    .malformed, setting: key, "\(setting.flag) needs a value: \(setting.type.expected)")
            }
            try settings.set(key, .commandLine(arguments[index]), spelling: .flag)
            index += 1
        }
        return settings
    }

    /// A decoded JSON object or YAML mapping of settings; `prefix` names where it sits (`fit.`).
    public static func parse(document: [String: Any], spelling: FitSpelling = .field, prefix: String = "")
        throws(FitSettingError) -> FitSettings
    {
        var settings = FitSettings()
        for key in document.keys.sorted() {
            do {
                try settings.set(key, FitInput(document: document[key]!), spelling: spelling)
            } catch {
                guard !prefix.isEmpty else { throw error }
                throw FitSettingError(error.kind, setting: error.setting, prefix + error.description)
            }
        }
        return settings
    }

    /// The command-line words that give these settings (inverse of `parse(arguments:)`).
    public var arguments: [String] {
        FitVocabulary.all.compactMap { setting in given[setting.name].map { "\(setting.flag)=\($0)" } }
    }
}
