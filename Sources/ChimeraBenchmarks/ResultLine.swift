/// One `kind key=value …` line, the format the C floor programs print and ours mirror.
struct ResultLine {
    let kind: String
    let fields: [String: String]

    init?(_ line: String) {
        let parts = line.split(separator: " ")
        guard let first = parts.first, !first.contains("=") else { return nil }
        kind = String(first)
        var fields: [String: String] = [:]
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        self.fields = fields
    }

    func number(_ key: String) -> Double? { fields[key].flatMap(Double.init) }
}

/// "8", "1k", "64k", "1m" → bytes (as the floor programs parse sizes).
func parseSize(_ text: String) -> Int? {
    let lower = text.lowercased()
    let multiplier: Int
    var digits = Substring(lower)
    switch lower.last {
    case "k": multiplier = 1 << 10; digits = digits.dropLast()
    case "m": multiplier = 1 << 20; digits = digits.dropLast()
    case "g": multiplier = 1 << 30; digits = digits.dropLast()
    default: multiplier = 1
    }
    return Int(digits).map { $0 * multiplier }
}

/// 1024 → "1KiB", as the floor programs label sizes.
func sizeLabel(_ bytes: Int) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20)MiB" }
    if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10)KiB" }
    return "\(bytes)B"
}
