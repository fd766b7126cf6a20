import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Whether serving failed because the port is taken, so the command can say which and what to do.
public func isAddressInUse(_ error: any Error) -> Bool {
    if let io = error as? IOError { return io.errnoCode == EADDRINUSE }
    return "\(error)".contains("Address already in use")
}
