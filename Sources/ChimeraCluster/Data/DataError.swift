/// A problem with a data file, naming the file and, where it applies, the row and column.
public struct DataError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let row: Int?
    public let column: String?
    public let problem: String
    /// A cell that is not a number: a labels file may then hold class names.
    var cellNotNumeric = false

    public init(file: String, row: Int? = nil, column: String? = nil, _ problem: String) {
        self.file = file
        self.row = row
        self.column = column
        self.problem = problem
    }

    public var description: String {
        var place = file
        if let row { place += ", row \(row)" }
        if let column { place += ", column \"\(column)\"" }
        return "\(place): \(problem)"
    }
}
