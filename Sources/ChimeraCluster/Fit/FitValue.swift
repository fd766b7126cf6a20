/// Which kind of fit a setting belongs to: the master's mode decides.
public enum FitMode: String, Sendable, CaseIterable, Hashable {
    case parameterServer = "parameter-server"
    case aggregation
}

/// A setting's value after parsing: what the vocabulary stores and maps to the wire.
public enum FitValue: Sendable, Hashable, CustomStringConvertible {
    case integer(Int)
    case number(Double)
    case boolean(Bool)
    case text(String)

    /// As a user would write it on a command line.
    public var description: String {
        switch self {
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .boolean(let value): value ? "true" : "false"
        case .text(let value): value
        }
    }

    public var integer: Int? { if case .integer(let v) = self { v } else { nil } }
    public var number: Double? {
        switch self {
        case .number(let v): v
        case .integer(let v): Double(v)
        default: nil
        }
    }
    public var boolean: Bool? { if case .boolean(let v) = self { v } else { nil } }
    public var text: String? { if case .text(let v) = self { v } else { nil } }

    /// The value as JSONSerialization and Yams take it.
    public var plain: any Sendable {
        switch self {
        case .integer(let v): v
        case .number(let v): v
        case .boolean(let v): v
        case .text(let v): v
        }
    }
}

/// A value as it arrived: typed from JSON or YAML (checked strictly against the setting's type), or
/// text from a command line (parsed as the setting's type).
public enum FitInput: Sendable {
    case integer(Int)
    case number(Double)
    case boolean(Bool)
    case text(String)
    case commandLine(String)
    /// A JSON or YAML list of integers.
    case integers([Int])
    /// null, an array or an object: never a valid setting; the text names what it was.
    case unsupported(String)

    /// A value from a YAML or JSON document decoded to Swift values (Bool, Int, Double, String, …).
    public init(document value: Any) {
        switch value {
        case let b as Bool: self = .boolean(b)
        case let i as Int: self = .integer(i)
        case let d as Double: self = .number(d)
        case let s as String: self = .text(s)
        case let list as [Int]: self = .integers(list)
        case is [Any]: self = .unsupported("a list")
        case is [String: Any]: self = .unsupported("a mapping")
        default: self = .unsupported("\(type(of: value))")
        }
    }

    /// What the value is, for "must be X, got Y" messages.
    var kindName: String {
        switch self {
        case .integer(let v): "the integer \(v)"
        case .number(let v): "the number \(v)"
        case .boolean(let v): "the boolean \(v)"
        case .text(let v): "the text \"\(v)\""
        case .commandLine(let v): "\"\(v)\""
        case .integers(let v): "the list \(v)"
        case .unsupported(let what): what
        }
    }
}

/// Why a fit setting was refused; `description` names the setting as the user spelled it.
public struct FitSettingError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case unknown, wrongType, outOfRange, wrongMode, malformed
    }
    public let kind: Kind
    /// The setting's name (snake_case), or what the user wrote when it is unknown.
    public let setting: String
    public let description: String

    public init(_ kind: Kind, setting: String, _ description: String) {
        self.kind = kind
        self.setting = setting
        self.description = description
    }
}

/// How a setting's name is shown in messages: `--batch-size` on a command line, `batch_size` in a body.
public enum FitSpelling: Sendable {
    case flag, field

    public func name(_ setting: String) -> String {
        switch self {
        case .flag: "--" + setting.replacing("_", with: "-")
        case .field: setting
        }
    }
}
