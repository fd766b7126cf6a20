/// Fan-out predictions in flight (aggregation mode, the Python Chimera's way): the rows go to the
/// workers, whose mean member outputs are summed here until every expected worker answered or the
/// deadline passed. No I/O: the master publishes the rows and answers the client with what
/// `finished(now:)` hands back. `Address` is where the answer goes (the client's peer and request id).
struct FanOuts<Address> {
    struct Task {
        let address: Address
        let rows: Int
        let outputs: Int
        let probabilities: Bool
        let deadline: Double
        var expected: Set<UInt32>
        var sums: [Float]
        var members = 0
        var failures: [String] = []
    }

    /// A fan-out that ended: the means over every member that answered, or why none did.
    enum Outcome {
        case answered(Address, means: [Float], rows: Int, probabilities: Bool, without: [String])
        case failed(Address, reasons: [String])
    }

    let limit: Int
    private(set) var tasks: [UInt64: Task] = [:]
    private var nextID: UInt64 = 1

    init(limit: Int) { self.limit = limit }

    /// Opens a fan-out to `expected` workers; nil when `limit` of them are waiting already.
    mutating func open(
        _ address: Address, rows: Int, outputs: Int, probabilities: Bool, expected: Set<UInt32>, deadline: Double
    ) -> UInt64? {
        guard tasks.count < limit else { return nil }
        let id = nextID
        nextID += 1
        tasks[id] = Task(
            address: address, rows: rows, outputs: outputs, probabilities: probabilities, deadline: deadline,
            expected: expected,
            sums: [Float](repeating: 0, count: rows * outputs))
        return id
    }

    /// A worker's answer: `add` adds its `members` members' mean outputs (× `members`) into the sums,
    /// or `failure` says why it has none. False when the task is unknown or did not wait for it.
    mutating func answer(
        _ id: UInt64, from worker: UInt32, members: Int, failure: String?, add: (inout [Float], Float) -> Void
    ) -> Bool {
        guard tasks[id]?.expected.remove(worker) != nil else { return false }
        if let failure {
            tasks[id]!.failures.append(failure)
        } else {
            let weight = max(members, 1)
            add(&tasks[id]!.sums, Float(weight))
            tasks[id]!.members += weight
        }
        return true
    }

    /// A worker that died or left will not answer: `reason` is reported if no one else does.
    mutating func lost(_ worker: UInt32, reason: String) {
        for id in tasks.keys where tasks[id]!.expected.remove(worker) != nil { tasks[id]!.failures.append(reason) }
    }

    /// Takes out the fan-outs that are complete, or past their deadline at `now`. `name` names a
    /// worker that never answered.
    mutating func finished(now: Double, name: (UInt32) -> String) -> [Outcome] {
        var outcomes: [Outcome] = []
        for (id, task) in tasks.sorted(by: { $0.key < $1.key }) where task.expected.isEmpty || now >= task.deadline {
            tasks[id] = nil
            let silent = task.expected.sorted().map { "\(name($0)): no answer in time" }
            guard task.members > 0 else {
                outcomes.append(.failed(task.address, reasons: task.failures + silent))
                continue
            }
            let scale = 1 / Float(task.members)
            outcomes.append(
                .answered(
                    task.address, means: task.sums.map { $0 * scale }, rows: task.rows,
                    probabilities: task.probabilities,
                    without: task.failures + silent))
        }
        return outcomes
    }
}
