import Foundation
import Synchronization
import LedgerCore
@testable import LedgerPipeline
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Flushes that can wait are written on idle CPU time (`Ledger.flush(idle:)`), chosen by
/// the clock from how busy the process is (`ProcessCPUShare`).

@Test func idleWorkRunsUnderTheIdleSchedulingPolicy() async throws {
    let idle = try await BlockingThread.run(name: "test-idle", idle: true) { sched_getscheduler(0) }
    let normal = try await BlockingThread.run(name: "test-normal") { sched_getscheduler(0) }
    #expect(idle == 5) // SCHED_IDLE
    #expect(normal == 0) // SCHED_OTHER
}

@Test func anIdleFlushWritesWhatANormalOneWrites() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    var config = LedgerConfiguration()
    config.dataDirectory = dir
    config.assembly.waitNano = 1_000_000_000
    let ledger = try Ledger(configuration: config, prices: prices, logger: .init(label: "test"), monotonicNow: { clock.now }, wallNow: { minute0 })
    for n in 1...20 { try await ingest(ledger, run(UInt64(n), workflow: "idle-flush", verdict: n % 2 == 0 ? "accepted" : nil, calls: [("small", 1000, 100)])) }
    clock.advance(seconds: 2)
    await ledger.tick()
    try await ledger.flush(idle: IdlePriority())
    #expect(await ledger.currentStats().unflushedSpans == 0)
    // A ledger opened on the directory reads the runs back from the flushed files alone.
    let again = try Ledger(configuration: config, prices: prices, logger: .init(label: "test"), monotonicNow: { clock.now }, wallNow: { minute0 })
    let g = try #require(await again.query(window).first)
    #expect(g.workflow == "idle-flush" && g.runs == 20 && g.measures.costMicros == 20 * 1400)
}

@Test func theCPUShareFollowsThisProcessesRecentWork() async throws {
    let cores = ProcessCPUShare.cores
    #expect(cores >= 1 && cores <= Double(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    func spin(_ ms: Int) -> UInt64 {
        let until = ContinuousClock.now + .milliseconds(ms)
        var x: UInt64 = 1
        while ContinuousClock.now < until { x = x &* 6364136223846793005 &+ 1 }
        return x
    }
    var share = ProcessCPUShare()
    #expect(share.recent == 0)
    // Spin one thread for 300 ms: at least a quarter of a core's worth shows, however busy
    // the machine; never more than every core. The first measurement is taken whole.
    #expect(spin(300) != 0)
    share.update()
    let first = share.recent
    #expect(first >= 0.25 / cores && first <= 1.05, "share \(first) of \(cores) cores")
    // A later one moves it toward the new share by the time passed over the one-second
    // window: after about 200 ms, a fifth of the way at most (whatever other tests running
    // meanwhile make the new share), where taken whole an idle second would drop it to 0.
    let start = ContinuousClock.now
    try await Task.sleep(for: .milliseconds(200))
    share.update()
    let passed = (ContinuousClock.now - start) / .seconds(1)
    #expect(abs(share.recent - first) <= min(1, passed) * 1.05 + 0.01, "moved \(share.recent - first) in \(passed) s")
}

@Test func theMachineShareIsReadFromTheFirstLineOfProcStat() throws {
    // user nice system idle iowait irq softirq steal (guest fields after are not counted).
    let sample = Array("cpu  100 5 50 800 45 0 0 0 7 0\ncpu0 50 2 25 400 20 0 0 0 3 0\n".utf8)
    let parsed = try #require(MachineCPUShare.parse(sample[...]))
    #expect(parsed.total == 1000 && parsed.busy == 155)
    #expect(MachineCPUShare.parse(Array("intr 1 2 3 4 5\n".utf8)[...]) == nil)
    #expect(MachineCPUShare.parse(Array("cpu  1 2\n".utf8)[...]) == nil)
    // This machine's own figures: ticks since boot, some of them busy, some idle.
    let machine = try #require(MachineCPUShare.read())
    #expect(machine.total > machine.busy && machine.busy > 0)
    #expect(MachineCPUShare.read(path: "/nonexistent/stat") == nil)
}

@Test func theMachineShareSeesEveryCoreBusy() async throws {
    // Every online CPU spun for 400 ms (threads of this process; the e2e test
    // `test_a_machine_kept_busy_by_others_gets_normal_priority_flushes` uses other processes).
    var share = MachineCPUShare()
    #expect(share.recent == 0)
    let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    let done = DispatchGroup()
    for _ in 0..<cpus {
        done.enter()
        Thread {
            let until = ContinuousClock.now + .milliseconds(400)
            var x: UInt64 = 1
            while ContinuousClock.now < until { x = x &* 6364136223846793005 &+ 1 }
            if x == 0 { print(x) }
            done.leave()
        }.start()
    }
    done.wait()
    share.update()
    let busy = try #require(share.recent)
    #expect(busy >= 0.6 && busy <= 1, "machine share \(busy) with all \(cpus) CPUs spinning")
}

@Test func anIdleThreadCanBePromotedToNormalPriorityWhileItRuns() async throws {
    let priority = IdlePriority()
    #expect(priority.promote() == .notRunning) // nothing running yet: it then starts at normal priority
    let fresh = IdlePriority()
    let release = Mutex(false), sampled = Mutex(false)
    let run = Task {
        try await BlockingThread.run(name: "test-promote", idle: fresh) { () -> (Int32, Int32) in
            let before = sched_getscheduler(0)
            sampled.withLock { $0 = true }
            while !release.withLock({ $0 }) { usleep(1000) }
            return (before, sched_getscheduler(0))
        }
    }
    // Promoted only once the body has read its policy: running (`isRunning`) starts before
    // the body does, and on a busy machine a promotion in between was read as the start.
    for _ in 0..<5000 where !sampled.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
    #expect(fresh.isRunning)
    let outcome = fresh.promote()
    release.withLock { $0 = true }
    let (before, after) = try await run.value
    #expect(before == 5) // SCHED_IDLE
    // Root or CAP_SYS_NICE (CI, this VM) may leave SCHED_IDLE; an unprivileged process may not.
    #expect(outcome == .promoted ? after == 0 : (outcome == .notPermitted && after == 5), "\(outcome), policy after \(after)")
    #expect(!fresh.isRunning && fresh.promote() == .notRunning)
    // Promoted before it started: the thread never enters SCHED_IDLE.
    let early = IdlePriority()
    early.promote()
    let policy = try await BlockingThread.run(name: "test-promoted-early", idle: early) { sched_getscheduler(0) }
    #expect(policy == 0)
}

/// The kernel's ID of the calling thread (`pthread_t` values are reused as soon as a
/// thread exits).
func threadID() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? "?"
}

/// Where the process may not raise a thread's priority (an unprivileged user: the pods'
/// 10001), a run in steps is promoted by moving the steps not yet begun to a new thread at
/// normal priority. The refusal is put in place here: this suite runs as root.
@Test func stepsLeftOfARefusedPromotionGoOnAtNormalPriorityOnANewThread() async throws {
    let refusing = IdlePriority(raise: { _ in false })
    let started = Mutex(false), release = Mutex(false)
    let seen = Mutex<[(policy: Int32, thread: String)]>([])
    @Sendable func note() { seen.withLock { $0.append((sched_getscheduler(0), threadID())) } }
    let run = Task {
        try await BlockingThread.runSteps(name: "test-steps", idle: refusing, [
            {
                note()
                started.withLock { $0 = true }
                while !release.withLock({ $0 }) { usleep(1000) }
            },
            { note() },
            { note() },
        ])
    }
    for _ in 0..<5000 where !started.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
    #expect(refusing.promote() == .atNextStep)
    release.withLock { $0 = true }
    try await run.value
    let steps = seen.withLock { $0 }
    try #require(steps.count == 3)
    #expect(steps[0].policy == 5) // SCHED_IDLE
    #expect(steps[1].policy == 0 && steps[2].policy == 0) // SCHED_OTHER
    #expect(steps[0].thread != steps[1].thread, "the rest moved to another thread")
    #expect(steps[1].thread == steps[2].thread, "and stayed there")
    #expect(!refusing.isRunning && refusing.promote() == .notRunning)
}

/// Not promoted, every step runs idle on one thread; a step that throws ends the run with
/// its error, and the steps after it do not run. Work not in steps stays idle when refused.
@Test func stepsRunInOrderOnOneIdleThreadAndStopAtTheFirstError() async throws {
    struct Boom: Error {}
    let seen = Mutex<[(step: Int, policy: Int32, thread: String)]>([])
    @Sendable func note(_ i: Int) { seen.withLock { $0.append((i, sched_getscheduler(0), threadID())) } }
    try await BlockingThread.runSteps(idle: IdlePriority(), (0..<4).map { i in { note(i) } })
    let steps = seen.withLock { $0 }
    #expect(steps.map(\.step) == [0, 1, 2, 3] && steps.allSatisfy { $0.policy == 5 })
    #expect(steps.allSatisfy { $0.thread == steps[0].thread })
    seen.withLock { $0 = [] }
    await #expect(throws: Boom.self) {
        try await BlockingThread.runSteps(idle: nil, [{ note(0) }, { throw Boom() }, { note(2) }])
    }
    #expect(seen.withLock { $0.map(\.step) } == [0])
    let refusing = IdlePriority(raise: { _ in false })
    let release = Mutex(false)
    let run = Task {
        try await BlockingThread.run(name: "test-unstepped", idle: refusing) { () -> Int32 in
            while !release.withLock({ $0 }) { usleep(1000) }
            return sched_getscheduler(0)
        }
    }
    for _ in 0..<5000 where !refusing.isRunning { try await Task.sleep(for: .milliseconds(1)) }
    #expect(refusing.promote() == .notPermitted)
    release.withLock { $0 = true }
    #expect(try await run.value == 5)
}
