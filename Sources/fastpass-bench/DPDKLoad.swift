import ArgumentParser
import Foundation
import PacketIO
import Synchronization

/// `fcp-load --io dpdk`: what the communication thread's packet I/O costs on a DPDK port,
/// measured on `net_null` (a device that drops what it is sent and returns frames of
/// zeros as fast as asked), in this process, on one pinned core:
///
/// - send: batches of 32 FCP datagrams of 64 bytes (an ALLOC's size) to `--hosts`
///   endpoints through ``DPDKPort/send(_:)``: neighbour lookup, Ethernet and IPv4 headers,
///   the IPv4 checksum in software, a buffer from the pool, the copy, the burst;
/// - receive: ``DPDKPort/receive(into:waitingUpTo:)`` in batches of 32: the burst, the
///   copy into the batch, classification. net_null hands back recycled buffers (in the
///   "both" phase, the frames just sent, stale otherwise), which classification rejects
///   early, so this is a lower bound on a real FCP packet's cost; that packet's own parse
///   and move is measured apart, on a built frame (``fcpFrameParseCost()``);
/// - both: one receive and one send per round, as the communication thread's loop goes.
///
/// The arbiter core's own work per packet is not in these numbers: `fcp-load` over
/// sockets measures the whole arbiter.
extension FCPLoadCommand {
    struct DPDKLoadReport: Encodable {
        var machine: MachineDescription
        var device: String
        var core: Int
        var endpoints: Int
        var batch: Int
        var payloadBytes: Int
        var runSeconds: Double
        var sendPerSecond: [Double]
        var receivePerSecond: [Double]
        var bothPerSecond: [Double]
        var allocationsInLoops: UInt64
        var fcpFrameParseNanoseconds: Double
        var medians: [String: Double]
    }

    func measureDPDK() throws {
        let settings = DPDKSettings(ealArguments: DPDKSettings.testArguments(device: dpdkDevice))
        let hostCount = hosts
        let seconds = duration
        let runCount = runs
        let core = arbiterCore
        let result = Mutex<Result<([Double], [Double], [Double], UInt64), DPDKError>>(.success(([], [], [], 0)))
        let done = DispatchSemaphore(value: 0)
        PinnedThread.start(name: "fp-dpdk-load", cpu: arbiterCore) { _ in
            defer { done.signal() }
            do throws(DPDKError) {
                let port = try DPDKPort(
                    settings: settings, localAddress: Self.arbiterAddress, expectedPeers: hostCount, pollingCPU: core)
                defer { port.close() }
                port.registerPollingThread()
                for i in 0..<hostCount {
                    port.addNeighbour(
                        Self.endpointNetwork + UInt32(i) + 1, mac: 0x0200_0000_0000 | Ethernet.Address(i + 1))
                }
                var tx = PacketBatch(capacity: 32)
                var rx = PacketBatch(capacity: 32)
                var next = 0
                func fill(_ batch: inout PacketBatch) {
                    while !batch.isFull
                        && batch.append({ buffer in
                            next = next + 1 == hostCount ? 0 : next + 1
                            buffer.storeBytes(of: UInt64(next), as: UInt64.self)
                            return (Self.endpointNetwork + UInt32(next) + 1, 64)
                        })
                    {}
                }
                var sends: [Double] = []
                var receives: [Double] = []
                var boths: [Double] = []
                sends.reserveCapacity(runCount)
                receives.reserveCapacity(runCount)
                boths.reserveCapacity(runCount)
                var allocations: UInt64 = 0
                // A short warm-up fills the mempool cache and the caches.
                for _ in 0..<10_000 {
                    fill(&tx)
                    _ = try? port.send(&tx)
                    _ = try? port.receive(into: &rx, waitingUpTo: 0)
                }
                for _ in 0..<runCount {
                    for phase in 0..<3 {
                        var packets = 0
                        var elapsed: UInt64 = 0
                        func frames() -> Int {
                            let s = port.statistics
                            return Int(s.received + s.notForUs + s.badHeader + s.tooLong)
                        }
                        let framesBefore = frames()
                        let m = Measurement.of {
                            let start = RealtimeClock.now()
                            let end = start + UInt64(seconds * 1e9)
                            var now = start
                            var round = 0
                            while now < end {
                                if phase != 1 {
                                    fill(&tx)
                                    packets += (try? port.send(&tx)) ?? 0
                                }
                                if phase != 0 { _ = try? port.receive(into: &rx, waitingUpTo: 0) }
                                round += 1
                                if round & 63 == 0 { now = RealtimeClock.now() }
                            }
                            elapsed = RealtimeClock.now() - start
                        }
                        allocations += m.allocations
                        packets += frames() - framesBefore
                        let rate = Double(packets) / (Double(elapsed) / 1e9)
                        switch phase {
                        case 0: sends.append(rate)
                        case 1: receives.append(rate)
                        default: boths.append(rate)
                        }
                    }
                }
                result.withLock { $0 = .success((sends, receives, boths, allocations)) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
        }
        done.wait()
        let parse = fcpFrameParseCost()
        let (sends, receives, boths, allocations): ([Double], [Double], [Double], UInt64)
        do {
            (sends, receives, boths, allocations) = try result.withLock { $0 }.get()
        } catch {
            throw ValidationError("fcp-load --io dpdk: \(error)")
        }
        let report = DPDKLoadReport(
            machine: .current(), device: dpdkDevice, core: arbiterCore, endpoints: hostCount, batch: 32,
            payloadBytes: 64,
            runSeconds: seconds, sendPerSecond: sends, receivePerSecond: receives, bothPerSecond: boths,
            allocationsInLoops: allocations, fcpFrameParseNanoseconds: parse,
            medians: ["send": median(sends), "receive": median(receives), "both": median(boths)])
        if json {
            printJSON(report)
            return
        }
        func mpps(_ v: Double) -> String { String(format: "%.2f M/s (%.0f ns each)", v / 1e6, 1e9 / v) }
        print(
            "DPDK packet I/O on \(dpdkDevice), one thread on core \(arbiterCore), batches of 32, 64-byte FCP payloads, \(hostCount) endpoints"
        )
        print("  send:    \(mpps(median(sends)))   runs \(sends.map { String(format: "%.2f", $0 / 1e6) })")
        print("  receive: \(mpps(median(receives)))   runs \(receives.map { String(format: "%.2f", $0 / 1e6) })")
        print("  both:    \(mpps(median(boths)))   runs \(boths.map { String(format: "%.2f", $0 / 1e6) })")
        print(
            "  not in net_null's numbers: classifying a real FCP frame and moving it into the batch, \(String(format: "%.1f", parse)) ns each (measured without the port; a null frame is rejected sooner)"
        )
        print(
            "  allocations in the measured loops: \(allocations) (counter self-check: \(allocationCounterSelfCheck()))")
        print("  median of \(runCount) × \(seconds) s per phase; \(MachineDescription.current().cpu), release build")
    }
}

extension FCPLoadCommand {
    /// Nanoseconds to classify a valid Ethernet/IPv4/FCP frame (checksum included) and move
    /// its IPv4 packet to the front of its buffer, as ``DPDKPort`` does for each FCP packet
    /// it receives: the receive work net_null's empty frames skip.
    func fcpFrameParseCost() -> Double {
        let stride = 2048
        let frame = UnsafeMutableRawPointer.allocate(byteCount: stride, alignment: 64)
        defer { frame.deallocate() }
        let mac: Ethernet.Address = 0x0200_0000_00AA
        let payload = 64
        func build() {
            Ethernet.writeHeader(frame, destination: mac, source: 0x0200_0000_0001, type: Ethernet.typeIPv4)
            IPv4.writeHeader(
                into: UnsafeMutableRawBufferPointer(start: frame + 14, count: 20), source: Self.endpointNetwork + 1,
                destination: Self.arbiterAddress, payloadLength: payload)
            IPv4.setChecksum(frame + 14)
        }
        let iterations = 5_000_000
        var kept = 0
        var best = Double.infinity
        for _ in 0..<5 {
            let start = RealtimeClock.now()
            for _ in 0..<iterations {
                build()
                if case .ipv4(_, _, 222, let h, let l) = Ethernet.classify(
                    frame, length: 14 + 20 + payload, ip: Self.arbiterAddress, mac: mac)
                {
                    frame.copyMemory(from: frame + 14, byteCount: h + l)
                    kept &+= 1
                }
            }
            let buildOnly = RealtimeClock.now()
            for _ in 0..<iterations { build() }
            let end = RealtimeClock.now()
            let each = (Double(buildOnly - start) - Double(end - buildOnly)) / Double(iterations)
            best = min(best, each)
        }
        blackHole(kept)
        precondition(kept == 5 * iterations, "the benchmark's frame was not classified as FCP")
        return max(0, best)
    }
}
