/// Heap memory for a tensor that this process produced: 64-byte aligned, freed when the last
/// reference goes. A zero-copy send retains it until libzmq's release callback, so it must not be
/// written after it has been handed to a message.
final class TensorBuffer {
    static let alignment = 64
    let bytes: UnsafeMutableRawBufferPointer

    init(byteCount: Int) {
        bytes = .allocate(byteCount: max(byteCount, 1), alignment: Self.alignment)
    }

    /// Takes over memory from `UnsafeMutableRawBufferPointer.allocate(byteCount:alignment:)`.
    init(adopting memory: UnsafeMutableRawBufferPointer) { bytes = memory }

    deinit { bytes.deallocate() }
}
