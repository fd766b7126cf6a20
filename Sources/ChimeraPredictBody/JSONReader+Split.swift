import ChimeraWire
import Dispatch

/// A growing float32 buffer with row lengths: what `JSONReader.rows` fills. Its memory becomes the
/// predict tensor without a copy (a 1,000 × 21 body used to be copied twice and faulted in thrice).
struct FloatRows {
    private var memory: UnsafeMutableRawBufferPointer
    private var storage: UnsafeMutablePointer<Float>
    private var capacity: Int
    private(set) var count = 0
    var rowLengths: [Int] = []

    init(expectedValues: Int) {
        capacity = max(1_024, expectedValues)
        (memory, storage) = Self.allocate(capacity)
    }

    private static func allocate(_ values: Int) -> (UnsafeMutableRawBufferPointer, UnsafeMutablePointer<Float>) {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: values * 4, alignment: 64)
        return (memory, memory.baseAddress!.bindMemory(to: Float.self, capacity: values))
    }

    @inline(__always)
    mutating func append(_ value: Float) {
        if count == capacity { grow(to: capacity * 2) }
        storage[count] = value
        count += 1
    }

    /// Lets `write` fill the spare room (at least 64 values: it grows first) and counts what it wrote.
    /// Returns `write`'s other result.
    @inline(__always)
    mutating func appendSpare<R>(_ write: (UnsafeMutablePointer<Float>, Int) -> (written: Int, R)) -> R {
        if capacity - count < 64 { grow(to: capacity * 2) }
        let (written, result) = write(storage + count, capacity - count)
        count += written
        return result
    }

    private mutating func grow(to values: Int) {
        let (larger, typed) = Self.allocate(values)
        typed.update(from: storage, count: count)
        memory.deallocate()
        (memory, storage, capacity) = (larger, typed, values)
    }

    /// The values (with `tail`'s after them) as a float32 tensor that owns this buffer, and the row
    /// lengths. Use once.
    mutating func result(appending tail: FloatRows? = nil) -> (values: Tensor, rowLengths: [Int]) {
        var lengths = rowLengths
        if var tail {
            if count + tail.count > capacity { grow(to: count + tail.count) }
            (storage + count).update(from: tail.storage, count: tail.count)
            count += tail.count
            lengths += tail.rowLengths
            tail.release()
        }
        return (Tensor.float32(adopting: memory, count: count), lengths)
    }
}

extension JSONReader {
    /// Below this many bytes of rows a second thread costs more than it saves.
    public static let splitBytes = 48 * 1024

    /// Reads a large rows array in two halves at once: this thread from the start to a row boundary
    /// near the middle, another core from there to the end. The second half counts only if the first
    /// half's own reading lands exactly on that boundary (so a `]` found inside some later string, or
    /// a malformed array, changes nothing: errors and results are those of a sequential read). Nil
    /// when the array is small or no boundary is found; the reader is then unchanged.
    mutating func splitFloatRows() throws(Failure) -> (values: Tensor, rowLengths: [Int])? {
        let remaining = bytes.count - position
        guard remaining >= Self.splitBytes, let boundary = rowStart(after: position + remaining / 2) else { return nil }
        let first = UncheckedReader(self)
        let second = UncheckedReader(reader(at: boundary.nextRow))
        let rowEnd = boundary.rowEnd
        let read = { @Sendable (part: Int) in
            let half = part == 0 ? first : second
            // The first half's buffer has room for the second's values too (untouched pages cost nothing).
            var out = FloatRows(expectedValues: remaining / (part == 0 ? 4 : 8))
            do throws(Failure) {
                let ended = try half.reader.rows(into: &out, stoppingAt: part == 0 ? rowEnd : nil)
                half.outcome = .success((out, ended))
            } catch {
                out.release()
                half.outcome = .failure(error)
            }
        }
        ParseHelper.shared.run({ read(1) }, alongside: { read(0) })
        guard case .success(let firstHalf)? = first.outcome else {
            second.discard()
            if case .failure(let error)? = first.outcome { throw error }
            return nil
        }
        var head = firstHalf.0
        let headEnded = firstHalf.1
        if headEnded {
            // The array ended before the boundary: the second half read something else.
            second.discard()
            self = first.reader
            return head.result()
        }
        switch second.outcome {
        case .success((let tail, _))?:
            self = second.reader
            return head.result(appending: tail)
        case .failure(let error)?:
            head.release()
            throw error
        case nil:
            head.release()
            return nil
        }
    }
}

extension FloatRows {
    /// Frees the buffer of rows that will not be used.
    mutating func release() {
        memory.deallocate()
        count = 0
    }
}

/// One half's reader and outcome, written by exactly one concurrentPerform iteration and read after
/// it returns (the bytes outlive the call: the caller holds them).
private final class UncheckedReader: @unchecked Sendable {
    var reader: JSONReader
    var outcome: Result<(FloatRows, Bool), JSONReader.Failure>?

    init(_ reader: JSONReader) { self.reader = reader }

    func discard() {
        if case .success((var rows, _))? = outcome { rows.release() }
        outcome = nil
    }
}
