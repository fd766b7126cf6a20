import Testing

@testable import ChimeraCluster

/// Fan-out bookkeeping without sockets: sums weighted by members, completion, deadlines, lost workers.
@Suite("Fan-out predictions")
struct FanOutsTests {
    static func add(_ values: [Float]) -> (inout [Float], Float) -> Void {
        { sums, weight in for index in sums.indices { sums[index] += values[index] * weight } }
    }

    @Test("the means are weighted by each worker's members; done when every expected worker answered")
    func weightedMeans() throws {
        var table = FanOuts<String>(limit: 4)
        let opened = table.open("client", rows: 2, outputs: 1, probabilities: false, expected: [1, 2], deadline: 10)
        let id = try #require(opened)
        let first = table.answer(id, from: 1, members: 1, failure: nil, add: Self.add([1, 0]))
        let none = table.finished(now: 0, name: { "w\($0)" })
        let again = table.answer(id, from: 1, members: 1, failure: nil, add: Self.add([9, 9]))
        let unknown = table.answer(id + 1, from: 2, members: 1, failure: nil, add: Self.add([9, 9]))
        let second = table.answer(id, from: 2, members: 3, failure: nil, add: Self.add([0, 1]))
        #expect(first && none.isEmpty && second)
        #expect(!again, "a second answer is not counted")
        #expect(!unknown, "unknown task")
        let outcomes = table.finished(now: 0, name: { "w\($0)" })
        guard case .answered("client", let means, 2, false, let without)? = outcomes.first else {
            Issue.record("\(outcomes)")
            return
        }
        #expect(means == [0.25, 0.75] && without.isEmpty)
        #expect(table.tasks.isEmpty)
    }

    @Test("at the deadline it answers with those who did and names the others; with none it fails")
    func deadlines() throws {
        var table = FanOuts<Int>(limit: 4)
        let partialID = table.open(1, rows: 1, outputs: 2, probabilities: true, expected: [1, 2, 3], deadline: 5)
        let emptyID = table.open(2, rows: 1, outputs: 2, probabilities: true, expected: [4], deadline: 6)
        let partial = try #require(partialID)
        let empty = try #require(emptyID)
        _ = table.answer(partial, from: 1, members: 2, failure: nil, add: Self.add([0.5, 0.5]))
        _ = table.answer(partial, from: 2, members: 1, failure: "w2: out of memory", add: Self.add([]))
        table.lost(4, reason: "w4: declared dead")
        let early = table.finished(now: 4, name: { "w\($0)" })
        // Task 2 lost its only worker: done at once, failed; task 1 still waits for w3.
        guard early.count == 1, case .failed(2, let reasons) = early[0] else {
            Issue.record("\(early)")
            return
        }
        #expect(reasons == ["w4: declared dead"])
        let late = table.finished(now: 5, name: { "w\($0)" })
        guard late.count == 1, case .answered(1, let means, 1, true, let without) = late[0] else {
            Issue.record("\(late)")
            return
        }
        #expect(means == [0.5, 0.5])
        #expect(without == ["w2: out of memory", "w3: no answer in time"])
        _ = empty
    }

    @Test("at most `limit` fan-outs wait at once")
    func limit() {
        var table = FanOuts<Int>(limit: 2)
        let one = table.open(1, rows: 1, outputs: 1, probabilities: false, expected: [1], deadline: 1)
        let two = table.open(2, rows: 1, outputs: 1, probabilities: false, expected: [1], deadline: 1)
        let three = table.open(3, rows: 1, outputs: 1, probabilities: false, expected: [1], deadline: 1)
        #expect(one == 1 && two == 2 && three == nil)
        _ = table.finished(now: 1, name: { "\($0)" })
        let later = table.open(3, rows: 1, outputs: 1, probabilities: false, expected: [1], deadline: 1)
        #expect(later == 3)
    }
}
