import ChimeraML
import Testing

@Suite("SSP barrier state machine")
struct SSPBarrierTests {
    /// One simulated worker: idle (may ask to start), parked, or computing its current iteration.
    enum Phase { case idle, parked, computing }

    /// Drives random interleavings of start requests, pushes, deaths and joins, checking after every
    /// event that nobody ever started iteration c while the slowest live worker was below c − s.
    func simulate(staleness: Int?, seed: UInt64, steps: Int) -> (maxAhead: Int, starts: Int) {
        var random = SplitMix64(seed: seed)
        var barrier = SSPBarrier(staleness: staleness)
        var phase: [UInt32: Phase] = [:]
        var nextID: UInt32 = 0
        var maxAhead = 0
        var starts = 0
        func start(_ worker: UInt32, _ clock: Int) {
            let minimum = barrier.minClock ?? clock
            if let s = staleness {
                #expect(minimum >= clock - s, "worker \(worker) started \(clock) with min \(minimum), s \(s)")
            }
            maxAhead = max(maxAhead, clock - minimum)
            starts += 1
            phase[worker] = .computing
        }
        for _ in 0..<(2 + Int(random.next() % 4)) {
            barrier.join(nextID)
            phase[nextID] = .idle
            nextID += 1
        }
        for _ in 0..<steps {
            let live = barrier.liveWorkers.sorted()
            let roll = random.next() % 100
            if roll < 3 || live.isEmpty {
                barrier.join(nextID)
                phase[nextID] = .idle
                nextID += 1
                continue
            }
            let worker = live[Int(random.next() % UInt64(live.count))]
            if roll < 6 && live.count > 1 {
                for released in barrier.leave(worker) { start(released, barrier.clocks[released]!) }
                phase[worker] = nil
                continue
            }
            switch phase[worker]! {
            case .idle:
                let clock = barrier.clocks[worker]!
                if barrier.requestStart(worker, clock: clock) == .proceed {
                    start(worker, clock)
                } else {
                    phase[worker] = .parked
                }
            case .computing:
                phase[worker] = .idle
                for released in barrier.pushed(worker) { start(released, barrier.clocks[released]!) }
            case .parked:
                continue
            }
            // Progress: the slowest live worker is never parked.
            let parked = barrier.liveWorkers.filter { phase[$0] == .parked }
            #expect(parked.count < barrier.liveWorkers.count, "every live worker is parked: deadlock")
        }
        return (maxAhead, starts)
    }

    @Test("no worker starts iteration c while the minimum live clock is below c − s", arguments: [0, 1, 2, 4, 8])
    func boundHolds(staleness: Int) {
        var seenAhead = 0
        for seed in 0..<300 as Range<UInt64> {
            let (ahead, starts) = simulate(staleness: staleness, seed: seed &* 7919 &+ UInt64(staleness), steps: 400)
            #expect(starts > 0)
            seenAhead = max(seenAhead, ahead)
        }
        #expect(seenAhead <= staleness)
        if staleness > 0 { #expect(seenAhead > 0, "the bound was never used") }
    }

    @Test("s = 0 is lockstep")
    func lockstep() {
        var barrier = SSPBarrier(staleness: 0)
        barrier.join(1)
        barrier.join(2)
        #expect(barrier.requestStart(1, clock: 0) == .proceed)
        #expect(barrier.requestStart(2, clock: 0) == .proceed)
        #expect(barrier.pushed(1).isEmpty)
        #expect(barrier.requestStart(1, clock: 1) == .park)
        #expect(barrier.pushed(2) == [1])
        #expect(barrier.requestStart(2, clock: 1) == .proceed)
    }

    @Test("unbounded staleness never waits")
    func unbounded() {
        var barrier = SSPBarrier(staleness: nil)
        barrier.join(1)
        barrier.join(2)
        for clock in 0..<100 {
            #expect(barrier.requestStart(1, clock: clock) == .proceed)
            _ = barrier.pushed(1)
        }
        #expect(barrier.minClock == 0)
    }

    @Test("a death releases the workers it held back; a joiner enters at the minimum")
    func deathAndJoin() {
        var barrier = SSPBarrier(staleness: 1)
        barrier.join(1)
        barrier.join(2)
        _ = barrier.pushed(1)
        _ = barrier.pushed(1)
        #expect(barrier.requestStart(1, clock: 2) == .park)
        #expect(barrier.leave(2) == [1])
        #expect(barrier.join(3) == 2)
        #expect(barrier.minClock == 2)
    }
}
