import ChimeraWire

/// The type of a fit setting, with its allowed range: parsing, help, OpenAPI and README come from it.
public enum FitSettingType: Sendable {
    case integer(ClosedRange<Int>)
    /// A finite number in the range; `above` makes the lower bound exclusive.
    case number(ClosedRange<Double>, above: Bool = false, below: Bool = false)
    case boolean
    /// One of the names (`aliases` map other spellings to a name).
    case choice([String], aliases: [String: String] = [:])
    /// Free text checked by `validate` (nil: fine, else the problem).
    case text(String, validate: @Sendable (String) -> String?)
    /// An integer in the range, or one of the words (aliases map to a word).
    case integerOrWord(ClosedRange<Int>, words: [String], aliases: [String: String] = [:])
    /// One to `count` integers, each in the range: "256,256" on a command line, [256, 256] in JSON or
    /// YAML (kept as the text "256,256").
    case integerList(ClosedRange<Int>, count: ClosedRange<Int>)

    /// "an integer in 1…10000000", for messages and help.
    public var expected: String {
        switch self {
        case .integer(let range): "an integer \(Self.describe(range))"
        case .number(let range, let above, let below): "a number \(Self.describe(range, above: above, below: below))"
        case .boolean: "true or false"
        case .choice(let names, _): "one of " + names.joined(separator: ", ")
        case .text(let what, _): what
        case .integerOrWord(let range, let words, _):
            "an integer \(Self.describe(range)) or " + words.map { "\"\($0)\"" }.joined(separator: ", ")
        case .integerList(let range, let count):
            "\(count.lowerBound)…\(count.upperBound) integers \(Self.describe(range)), such as 256,256"
        }
    }

    static func describe(_ range: ClosedRange<Int>) -> String {
        if range.upperBound == Int.max { return "≥ \(range.lowerBound)" }
        return "in \(range.lowerBound)…\(range.upperBound)"
    }

    static func describe(_ range: ClosedRange<Double>, above: Bool, below: Bool) -> String {
        let low = range.lowerBound
        let high = range.upperBound
        if high == .greatestFiniteMagnitude || high == .infinity {
            if low == -.greatestFiniteMagnitude || low == -.infinity { return "(any finite value)" }
            return above ? "> \(short(low))" : "≥ \(short(low))"
        }
        return "in \(above ? "(" : "[")\(short(low)), \(short(high))\(below ? ")" : "]")"
    }

    static func short(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
    }
}

/// One fit setting: the single definition every front end (CLI, HTTP, sweep YAML) and the wire use.
public struct FitSetting: Sendable {
    /// snake_case: the HTTP field and YAML key; the command-line flag is its kebab-case form.
    public let name: String
    public let type: FitSettingType
    public let defaultValue: FitValue
    public let modes: Set<FitMode>
    public let help: String
    /// A value valid on its own may still not fit a mode (a tree model on a parameter-server fit).
    let checkMode: (@Sendable (FitValue, FitMode) -> String?)?
    /// Writes the value into the wire message (every setting of the fit's mode is written, defaults too).
    let apply: @Sendable (FitValue, inout Chimera_V1_FitConfig) -> Void

    init(
        _ name: String, _ type: FitSettingType, default defaultValue: FitValue, modes: Set<FitMode>, help: String,
        checkMode: (@Sendable (FitValue, FitMode) -> String?)? = nil,
        apply: @escaping @Sendable (FitValue, inout Chimera_V1_FitConfig) -> Void
    ) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.modes = modes
        self.help = help
        self.checkMode = checkMode
        self.apply = apply
    }

    public var flag: String { FitSpelling.flag.name(name) }

    /// Parses and range-checks one value.
    public func parse(_ input: FitInput, spelling: FitSpelling) throws(FitSettingError) -> FitValue {
        let shown = spelling.name(name)
        func wrongType() -> FitSettingError {
            FitSettingError(.wrongType, setting: name, "\(shown) must be \(type.expected), got \(input.kindName)")
        }
        func outOfRange(_ value: String) -> FitSettingError {
            FitSettingError(.outOfRange, setting: name, "\(shown) must be \(type.expected), got \(value)")
        }
        switch type {
        case .integer(let range):
            let value: Int
            switch input {
            case .integer(let v): value = v
            case .number(let d) where d == d.rounded() && abs(d) < 9e18: value = Int(d)
            case .commandLine(let text):
                guard let v = Int(text.trimmed) else { throw wrongType() }
                value = v
            default: throw wrongType()
            }
            guard range.contains(value) else { throw outOfRange("\(value)") }
            return .integer(value)
        case .number(let range, let above, let below):
            let value: Double
            switch input {
            case .integer(let v): value = Double(v)
            case .number(let v): value = v
            case .commandLine(let text):
                guard let v = Double(text.trimmed) else { throw wrongType() }
                value = v
            default: throw wrongType()
            }
            guard value.isFinite, range.contains(value), !(above && value == range.lowerBound),
                !(below && value == range.upperBound)
            else { throw outOfRange("\(value)") }
            return .number(value)
        case .boolean:
            switch input {
            case .boolean(let v): return .boolean(v)
            case .commandLine(let text):
                switch text.trimmed.lowercased() {
                case "true", "yes", "on", "1": return .boolean(true)
                case "false", "no", "off", "0": return .boolean(false)
                default: throw wrongType()
                }
            default: throw wrongType()
            }
        case .choice(let names, let aliases):
            let text: String
            switch input {
            case .text(let t), .commandLine(let t): text = t.trimmed.lowercased()
            default: throw wrongType()
            }
            if names.contains(text) { return .text(text) }
            if let name = aliases[text] { return .text(name) }
            throw outOfRange("\"\(text)\"")
        case .text(_, let validate):
            let text: String
            switch input {
            case .text(let t), .commandLine(let t): text = t.trimmed
            // A count such as 5 is text on the wire: take a JSON or YAML number too.
            case .integer(let v): text = "\(v)"
            case .number(let v): text = "\(v)"
            default: throw wrongType()
            }
            if let problem = validate(text) {
                throw FitSettingError(.outOfRange, setting: name, "\(shown): \(problem)")
            }
            return .text(text)
        case .integerOrWord(let range, let words, let aliases):
            switch input {
            case .integer(let v):
                guard range.contains(v) else { throw outOfRange("\(v)") }
                return .integer(v)
            case .text(let t), .commandLine(let t):
                let word = t.trimmed.lowercased()
                if words.contains(word) { return .text(word) }
                if let alias = aliases[word] { return .text(alias) }
                guard case .commandLine = input, let v = Int(word) else { throw wrongType() }
                guard range.contains(v) else { throw outOfRange("\(v)") }
                return .integer(v)
            case .number(let d) where d == d.rounded() && abs(d) < 9e18:
                guard range.contains(Int(d)) else { throw outOfRange("\(d)") }
                return .integer(Int(d))
            default: throw wrongType()
            }
        case .integerList(let range, let count):
            let values: [Int]
            switch input {
            case .integers(let list): values = list
            case .integer(let v): values = [v]
            case .text(let t), .commandLine(let t):
                let parts = t.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmed }
                let parsed = parts.compactMap { Int($0) }
                guard parsed.count == parts.count else { throw wrongType() }
                values = parsed
            default: throw wrongType()
            }
            guard count.contains(values.count) else {
                throw outOfRange("\(values.count) value\(values.count == 1 ? "" : "s")")
            }
            if let bad = values.first(where: { !range.contains($0) }) { throw outOfRange("\(bad)") }
            return .text(values.map(String.init).joined(separator: ","))
        }
    }
}

extension String {
    var trimmed: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
}
