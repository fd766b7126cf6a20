/// An error found while a command runs (not a malformed command line): printed as `Error: …`
/// without the usage text that ArgumentParser adds to a `ValidationError`.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
