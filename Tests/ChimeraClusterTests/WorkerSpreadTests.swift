import ChimeraCluster
import Testing

@Suite("many workers read as a summary")
struct WorkerSpreadTests {
    @Test("up to 16 workers are listed one by one; beyond, counts, the clocks' and waits' spread, outliers named")
    func summary() {
        let few = (1...16).map { WorkerSpread.Worker(name: "w\($0)", alive: true, clock: 10) }
        #expect(WorkerSpread.summary(few).isEmpty)
        var many = (1...64).map {
            WorkerSpread.Worker(name: "w\($0)", alive: true, clock: 150, barrierWait: 1 + Double($0) / 100)
        }
        many[2].clock = 147
        many[2].barrierWait = 0.01
        for index in [9, 19, 29, 39, 49, 59] { many[index].alive = false }
        let lines = WorkerSpread.summary(many)
        #expect(lines.count == 3)
        #expect(lines[0] == "  64 workers: 58 alive, 6 dead (w10, w20, w30, w40, w50 and 1 more)")
        #expect(lines[1] == "  clocks (alive): min 147 (w3), median 150, max 150")
        #expect(lines[2].hasPrefix("  barrier wait (alive): min 0.01 s (w3: the one the others wait for), median "))
        #expect(lines[2].hasSuffix("max 1.64 s (w64)"))
        // Without barrier waits (chimera status), no line about them.
        let plain = many.map { WorkerSpread.Worker(name: $0.name, alive: $0.alive, clock: $0.clock) }
        #expect(WorkerSpread.summary(plain).count == 2)
        let idle = (1...20).map { WorkerSpread.Worker(name: "w\($0)", alive: true, clock: 0) }
        #expect(WorkerSpread.summary(idle) == ["  20 workers: 20 alive, 0 dead", "  clocks (alive): all 0"])
    }
}
