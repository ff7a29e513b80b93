import FastpassArbiter

/// The arbiter's modelled CPU (``ArbiterCPUConfiguration``): FCP packets wait in a bounded
/// receive queue for one communication core, which runs rounds as the daemon's loop does
/// (receive up to 16 batches of 32, advance the core when due, send up to 16 batches of
/// 32), each packet received or sent taking one service time; allocation runs on
/// allocator cores whose backlog holds the next batch back, so an arbiter short of cores
/// is late and skips slots as the daemon's allocator does.
extension Simulation {
    /// An FCP packet reached the arbiter's NIC.
    func arbiterCPUArrival(_ i: Int32) {
        guard cpu.queueLength < cpu.configuration.receiveQueuePackets else {
            cpu.drops &+= 1
            freePacket(i)
            return
        }
        cpu.noteQueue(now: now)
        // From here `created` is when it reached the arbiter's host (see `arrivedAt`).
        packets[Int(i)].created = now
        cpu.queue.push(i)
        cpu.queueLength += 1
        if cpu.queueLength > cpu.queueMax { cpu.queueMax = cpu.queueLength }
        if cpu.phase == .idle { startArbiterRound() }
    }

    /// The arbiter's deadline came (a wake event) while the core may be idle.
    func arbiterCPUWake() {
        arbiterWakeAt = .max
        if cpu.phase == .idle {
            startArbiterRound()
        } else {
            // The allocator cores do not wait for the communication core's round: a batch
            // due now is allocated now (the session timers that `advance` also fires come
            // with it, a little before the daemon's loop would fire them).
            advanceArbiterCore(gated: true)
            scheduleArbiterWake()
        }
    }

    func startArbiterRound() {
        measureArbiterLoad()
        cpu.batches = 0
        cpu.moreToSend = false
        startReceiveBatch()
    }

    private func startReceiveBatch() {
        let k = min(cpu.queueLength, ArbiterCPUConfiguration.ioBatch)
        guard k > 0 else {
            finishReceiving()
            return
        }
        cpu.noteQueue(now: now)
        for j in 0..<k { cpu.inService[j] = cpu.queue.pop()! }
        cpu.queueLength -= k
        cpu.inServiceCount = k
        cpu.phase = .receiving
        occupyCommunicationCore(packets: k)
    }

    private func occupyCommunicationCore(packets k: Int) {
        let t = UInt64(k) &* cpu.configuration.packetNanoseconds
        cpu.busyNanoseconds &+= t
        events.schedule(.arbiterCPUDone, at: now + t)
    }

    /// The communication core finished its batch: the packets received take effect, or the
    /// packets sent leave.
    func arbiterCPUDone() {
        switch cpu.phase {
        case .receiving:
            let topology = arbiterTopology!
            for j in 0..<cpu.inServiceCount {
                let i = cpu.inService[j]
                let c = Int(packets[Int(i)].control)
                let from = topology.addresses[Int(packets[Int(i)].source)]
                let arrived = packets[Int(i)].created
                controlArena[c].withUnsafeBytes { arbiter?.receive($0, from: from, now: now, arrivedAt: arrived) }
                freePacket(i)
            }
            cpu.received &+= UInt64(cpu.inServiceCount)
            cpu.batches += 1
            let full = cpu.inServiceCount == ArbiterCPUConfiguration.ioBatch
            cpu.inServiceCount = 0
            if full && cpu.batches < ArbiterCPUConfiguration.batchesPerRound && cpu.queueLength > 0 {
                startReceiveBatch()
            } else {
                finishReceiving()
            }
        case .sending:
            let k = cpu.sendCount
            arbiterCPUSend(k - 1)
            cpu.sendCount = 0
            cpu.batches += 1
            if k == ArbiterCPUConfiguration.ioBatch { startSendBatch() } else { finishRound() }
        case .idle:
            break
        }
    }

    private func finishReceiving() {
        advanceArbiterCore(gated: true)
        // Due again during the sends, which may take longer than a batch.
        scheduleArbiterWake()
        cpu.batches = 0
        startSendBatch()
    }

    private func startSendBatch() {
        guard cpu.batches < ArbiterCPUConfiguration.batchesPerRound else {
            // Back to receiving, so a burst of sends cannot starve input.
            cpu.moreToSend = true
            finishRound()
            return
        }
        guard let core = arbiter else {
            finishRound()
            return
        }
        var k = 0
        let stride = ArbiterCPUState.sendStride
        while k < ArbiterCPUConfiguration.ioBatch {
            let built = cpu.sendBuffer.withUnsafeMutableBytes {
                core.nextPacket(
                    now: now, into: UnsafeMutableRawBufferPointer(rebasing: $0[k * stride..<(k + 1) * stride]))
            }
            guard let (address, n) = built else { break }
            cpu.sendAddresses[k] = address
            cpu.sendLengths[k] = n
            k += 1
        }
        guard k > 0 else {
            finishRound()
            return
        }
        cpu.sendCount = k
        cpu.phase = .sending
        // Each packet leaves when the core is done with it, not with the whole batch: a
        // batch of 32 takes 90 µs at 2.8 µs a packet, 73 slots.
        for j in 0..<k - 1 {
            events.schedule(
                .arbiterCPUSend, at: now + UInt64(j + 1) &* cpu.configuration.packetNanoseconds, a: Int32(j))
        }
        occupyCommunicationCore(packets: k)
    }

    /// Packet `j` of the send batch in service leaves.
    func arbiterCPUSend(_ j: Int) {
        cpu.sent &+= 1
        guard let h = arbiterTopology!.index(ofAddress: cpu.sendAddresses[j]) else { return }
        let start = j * ArbiterCPUState.sendStride
        sendControl(cpu.sendBuffer[start..<start + cpu.sendLengths[j]], from: arbiterNode, to: h)
    }

    private func finishRound() {
        cpu.phase = .idle
        if cpu.moreToSend || cpu.queueLength > 0 {
            startArbiterRound()
        } else {
            scheduleArbiterWake()
        }
    }

    /// When the next batch falls due: until then ``ArbiterCore/advance(now:)`` only fires
    /// session timers and gives the allocator no work.
    func arbiterBatchDue(_ core: ArbiterCore) -> UInt64 {
        let lookahead = UInt64(core.lookaheadSlots)
        let next = core.nextSlotToAllocate
        return next > lookahead ? core.start(ofSlot: next - lookahead) : 0
    }

    /// Tells the arbiter core how busy its communication core was over the last window, and
    /// how many packets a second of its work received, as the daemon's loop does.
    func measureArbiterLoad() {
        guard let core = arbiter, now >= cpu.loadWindowStart + ArbiterCPUState.loadWindowNanoseconds else { return }
        let busy = cpu.busyNanoseconds &- cpu.loadWindowBusy
        let received = cpu.received &- cpu.loadWindowReceived
        let load = Double(busy) / Double(now - cpu.loadWindowStart)
        core.noteCommunicationLoad(busyFraction: load)
        if load >= ArbiterCore.measuredLoad && received >= 100 {
            core.noteMeasuredCapacity(receivedPerBusySecond: Double(received) * 1e9 / Double(busy))
        }
        cpu.loadWindowStart = now
        cpu.loadWindowBusy = cpu.busyNanoseconds
        cpu.loadWindowReceived = cpu.received
    }

    /// Advances the arbiter core when it is due and counts the allocator work it did.
    /// `gated`: a batch that falls due while the allocator cores are still busy waits for
    /// them (and the session timers with it, as `advance` does both); it is then late,
    /// and the core skips the slots that have begun.
    func advanceArbiterCore(gated: Bool) {
        guard let core = arbiter else { return }
        if gated {
            guard core.nextDeadline <= now else { return }
            if now < cpu.allocatorFreeAt && arbiterBatchDue(core) <= now { return }
        }
        core.advance(now: now)
        let s = core.statistics
        let work = cpu.noteAllocatorWork(
            allocated: core.allocatorStatistics.allocatedSlots, batches: s.batchesAllocated, skipped: s.slotsSkipped,
            batchSize: core.configuration.allocator.batchSize)
        if work > 0 {
            cpu.allocatorFreeAt =
                max(cpu.allocatorFreeAt, now) + UInt64((work / Double(cpu.configuration.allocatorCores)).rounded(.up))
        }
    }

    /// The time of the arbiter's next wake with its CPU modelled: its deadline, or when
    /// the allocator cores are free if a batch is due before.
    func arbiterCPUWakeTime(_ core: ArbiterCore) -> UInt64 {
        let t = max(core.nextDeadline, now)
        if t < cpu.allocatorFreeAt && arbiterBatchDue(core) <= t { return cpu.allocatorFreeAt }
        return t
    }

    /// A new arbiter process: its counters start from zero, and its allocator is idle.
    func resetArbiterCPUCounters() {
        cpu.allocatedSeen = 0
        cpu.batchesSeen = 0
        cpu.skippedSeen = 0
        cpu.allocatorFreeAt = now
    }
}
