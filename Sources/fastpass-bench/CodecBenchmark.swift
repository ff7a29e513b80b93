import ArgumentParser
@_spi(Testing) import FastpassProtocol
import Foundation

/// Encode and decode of the largest reference packet the arbiter sends: RESET, an ALLOC
/// with 15 destinations and 62 descriptor bytes, and 10 allocation reports (154 bytes).
struct CodecBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract: "FCP encode/decode cost per packet and allocations per packet (release mode).")

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "Timed runs; the median is reported.")
    var runs = 7

    @Option(help: "Packets per run.")
    var packets = 1_000_000

    struct Result: Encodable {
        var benchmark = "codec"
        var packet_bytes: Int
        var alloc_destinations: Int
        var alloc_descriptor_bytes: Int
        var reports: Int
        var runs: Int
        var packets_per_run: Int
        var encode_ns_per_packet: Double
        var decode_ns_per_packet: Double
        var receive_ns_per_packet: Double
        var descriptor_encode_ns_per_packet: Double
        var allocations_per_packet: Double
        var encode_allocations: UInt64
        var decode_allocations: UInt64
        var receive_allocations: UInt64
        var descriptor_encode_allocations: UInt64
        /// Allocations counted for 100 deliberate array allocations (must be ≥ 100).
        var allocation_counter_self_check: UInt64
        var machine: MachineDescription
    }

    /// The block every encode run writes: 62 slots over 15 destinations, some gaps.
    static func makeBlock() -> AllocBlock {
        var pending = PendingAllocations()
        fill(&pending, base: 1_000_000)
        var block = AllocBlock()
        pending.takeBlock(into: &block, maxDescriptorBytes: 62, maxPayloadBytes: 96)
        return block
    }

    static func fill(_ pending: inout PendingAllocations, base: UInt64) {
        var slot = base
        for i in 0..<62 {
            slot += i % 9 == 0 ? 3 : 1
            // The path goes with the destination, so the 15 destinations stay 15 raw fields.
            _ = pending.add(slot: slot, node: NodeID(UInt32(10 + i % 15)), path: PathID(UInt16(i % 15 % 4)))
        }
    }

    func run() throws {
        let counterCheck = allocationCounterSelfCheck()
        guard counterCheck >= 100 else {
            throw ValidationError("the allocation counter is not counting (saw \(counterCheck) of 100 allocations)")
        }
        let block = Self.makeBlock()
        precondition(
            block.destinationCount == 15 && block.descriptorCount == 62,
            "unexpected block shape \(block.destinationCount) \(block.descriptorCount)")
        let resetTimestamp: UInt64 = 1_700_000_000_000_000_000
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = packets

        // Encode: header, RESET, ALLOC, 10 reports, checksum.
        func encodeOne(_ buffer: UnsafeMutableRawBufferPointer, _ i: Int) -> Int {
            var writer = FCPPacketWriter(buffer, maxLength: FCPWire.arbiterMaxLength)
            let sequence = UInt64(i) &+ 0xDEAD_BEEF
            do throws(FCPEncodeError) {
                try writer.writeHeader(sequence: sequence, ackSequence: UInt64(i), ackVector: 0xFFFF)
                try writer.writeReset(timestamp: resetTimestamp)
                try writer.writeAlloc(block)
                try writer.writeRequests(count: 10) { k in (UInt16(10 + k), UInt16(truncatingIfNeeded: i &+ k)) }
                return try writer.finalize(sequence: sequence, ackSequence: UInt64(i))
            } catch {
                return -1
            }
        }
        let length = buffer.withUnsafeMutableBytes { encodeOne($0, 0) }
        precondition(length == FCPWire.arbiterMaxLength, "packet is \(length) bytes")

        var encodeTimes: [Double] = []
        var encodeAllocations: UInt64 = 0
        for _ in 0..<runs {
            var sink = 0
            let m = buffer.withUnsafeMutableBytes { raw in
                Measurement.of { for i in 0..<n { sink &+= encodeOne(raw, i) } }
            }
            blackHole(sink)
            encodeTimes.append(m.nanoseconds / Double(n))
            encodeAllocations = max(encodeAllocations, m.allocations)
        }

        // Decode, stateless: checksum, header, every payload, every descriptor and report.
        // 1024 distinct packets (different sequence numbers, checksums, counts) are cycled,
        // so nothing about the input is loop-invariant.
        let distinct = 1024
        var corpus = [UInt8](repeating: 0, count: distinct * 160)
        corpus.withUnsafeMutableBytes { raw in
            for k in 0..<distinct {
                _ = encodeOne(UnsafeMutableRawBufferPointer(rebasing: raw[(k * 160)..<(k * 160 + 160)]), k)
            }
        }
        var decodeTimes: [Double] = []
        var decodeAllocations: UInt64 = 0
        for _ in 0..<runs {
            var visitor = DecodeVisitor()
            let m = corpus.withUnsafeBytes { raw in
                Measurement.of {
                    for i in 0..<n {
                        let k = i & (distinct - 1)
                        let p = UnsafeRawBufferPointer(rebasing: raw[(k * 160)..<(k * 160 + length)])
                        guard FCPChecksum.verify(p, sequence: UInt64(k) &+ 0xDEAD_BEEF, ackSequence: UInt64(k)),
                            FCPHeader(p) != nil
                        else { continue }
                        _ = FCPPacketParser.walkPayloads(p, extensionsEnabled: false, delegate: &visitor)
                    }
                }
            }
            precondition(
                visitor.slots == 62 * n && visitor.reports == 10 * n, "decode did not see every slot and report")
            blackHole(visitor.sink)
            decodeTimes.append(m.nanoseconds / Double(n))
            decodeAllocations = max(decodeAllocations, m.allocations)
        }

        // Receive through the connection state machine, in steady state: both ends in sync
        // (no RESET), every arbiter packet acknowledging the endpoint packet sent just
        // before it, so reconstruction, the receive window and acknowledgement processing
        // all run. The endpoint's commit of its own packet is timed separately and
        // subtracted.
        let receiveCount = min(n, 65_536)
        var stream = [UInt8](repeating: 0, count: receiveCount * 160)
        var lengths = [Int](repeating: 0, count: receiveCount)
        var ignore = DecodeVisitor()
        func newEndpoint() -> FCPConnection {
            var c = FCPConnection(configuration: .init(side: .endpoint), resetTime: resetTimestamp)
            c.setInSync(true)
            return c
        }
        var endpointSide = newEndpoint()
        var arbiterSide = FCPConnection(configuration: .init(side: .arbiter), resetTime: resetTimestamp)
        arbiterSide.setInSync(true)
        var small = [UInt8](repeating: 0, count: 64)
        stream.withUnsafeMutableBytes { raw in
            for i in 0..<receiveCount {
                let t = resetTimestamp + UInt64(i) * 1_000
                endpointSide.prepareToSend(delegate: &ignore)
                let up = endpointSide.commit(now: t, delegate: &ignore)
                let upLength: Int = small.withUnsafeMutableBytes { b in
                    var w = FCPPacketWriter(b, maxLength: FCPWire.endpointMaxLength)
                    do throws(FCPEncodeError) {
                        try w.writeHeader(sequence: up.sequence, ackSequence: up.ackSequence, ackVector: up.ackVector)
                        try w.pad()
                        return try w.finalize(sequence: up.sequence, ackSequence: up.ackSequence)
                    } catch { return 0 }
                }
                _ = small.withUnsafeBytes {
                    arbiterSide.receive(
                        UnsafeRawBufferPointer(rebasing: $0[0..<upLength]), now: t + 200, delegate: &ignore)
                }
                arbiterSide.prepareToSend(delegate: &ignore)
                let h = arbiterSide.commit(now: t + 300, delegate: &ignore)
                let slice = UnsafeMutableRawBufferPointer(rebasing: raw[(i * 160)..<(i * 160 + 160)])
                var writer = FCPPacketWriter(slice, maxLength: FCPWire.arbiterMaxLength)
                do throws(FCPEncodeError) {
                    try writer.writeHeader(sequence: h.sequence, ackSequence: h.ackSequence, ackVector: h.ackVector)
                    try writer.writeAlloc(block)
                    try writer.writeRequests(count: 10) { k in (UInt16(10 + k), UInt16(truncatingIfNeeded: i &+ k)) }
                    lengths[i] = try writer.finalize(sequence: h.sequence, ackSequence: h.ackSequence)
                } catch {
                    lengths[i] = 0
                }
            }
        }
        var receiveTimes: [Double] = []
        var receiveAllocations: UInt64 = 0
        for _ in 0..<runs {
            var receiver = newEndpoint()
            var visitor = DecodeVisitor()
            var delivered = 0
            let both = stream.withUnsafeBytes { raw in
                Measurement.of {
                    for i in 0..<receiveCount {
                        let t = resetTimestamp + UInt64(i) * 1_000
                        receiver.prepareToSend(delegate: &visitor)
                        _ = receiver.commit(now: t, delegate: &visitor)
                        let p = UnsafeRawBufferPointer(rebasing: raw[(i * 160)..<(i * 160 + lengths[i])])
                        if receiver.receive(p, now: t + 500, delegate: &visitor).delivered { delivered += 1 }
                    }
                }
            }
            precondition(delivered == receiveCount, "only \(delivered) of \(receiveCount) delivered")
            precondition(receiver.statistics.ackedPackets == UInt64(receiveCount), "acknowledgements not processed")
            var committer = newEndpoint()
            let commitOnly = Measurement.of {
                for i in 0..<receiveCount {
                    committer.prepareToSend(delegate: &visitor)
                    _ = committer.commit(now: resetTimestamp + UInt64(i) * 1_000, delegate: &visitor)
                }
            }
            blackHole(visitor.sink)
            blackHole(committer.highestSent)
            receiveTimes.append(max(0, both.nanoseconds - commitOnly.nanoseconds) / Double(receiveCount))
            receiveAllocations = max(receiveAllocations, both.allocations)
        }

        // Descriptor encoding alone: refill the pending window, take a block; the refill
        // is timed separately and subtracted.
        var descriptorTimes: [Double] = []
        var descriptorAllocations: UInt64 = 0
        let descriptorRounds = max(1, n / 10)
        for _ in 0..<runs {
            var pending = PendingAllocations()
            var out = AllocBlock()
            var sink = 0
            let both = Measurement.of {
                for r in 0..<descriptorRounds {
                    Self.fill(&pending, base: UInt64(r) * 200)
                    sink &+= pending.takeBlock(into: &out, maxDescriptorBytes: 62, maxPayloadBytes: 96)
                }
            }
            var refillOnly = PendingAllocations()
            var refillSink = 0
            let refill = Measurement.of {
                for r in 0..<descriptorRounds {
                    Self.fill(&refillOnly, base: UInt64(r) * 200)
                    refillSink &+= refillOnly.count
                    refillOnly.removeAll()
                }
            }
            blackHole(refillSink)
            blackHole(sink)
            if ProcessInfo.processInfo.environment["FASTPASS_BENCH_VERBOSE"] != nil {
                print(
                    "fill+take \(both.nanoseconds / Double(descriptorRounds)) ns, fill \(refill.nanoseconds / Double(descriptorRounds)) ns"
                )
            }
            descriptorTimes.append(max(0, both.nanoseconds - refill.nanoseconds) / Double(descriptorRounds))
            descriptorAllocations = max(descriptorAllocations, both.allocations)
        }

        let perPacket =
            Double(max(encodeAllocations, decodeAllocations, receiveAllocations, descriptorAllocations)) / Double(n)
        let result = Result(
            packet_bytes: length, alloc_destinations: block.destinationCount,
            alloc_descriptor_bytes: block.descriptorCount,
            reports: 10, runs: runs, packets_per_run: n, encode_ns_per_packet: median(encodeTimes),
            decode_ns_per_packet: median(decodeTimes), receive_ns_per_packet: median(receiveTimes),
            descriptor_encode_ns_per_packet: median(descriptorTimes), allocations_per_packet: perPacket,
            encode_allocations: encodeAllocations, decode_allocations: decodeAllocations,
            receive_allocations: receiveAllocations, descriptor_encode_allocations: descriptorAllocations,
            allocation_counter_self_check: counterCheck, machine: .current())
        if json {
            printJSON(result)
        } else {
            print(
                "FCP codec, \(length)-byte ALLOC packet (15 destinations, 62 descriptor bytes, 10 reports), median of \(runs) runs × \(n) packets"
            )
            print(
                "  encode             \(format(result.encode_ns_per_packet)) ns/packet   allocations \(encodeAllocations)"
            )
            print(
                "  decode             \(format(result.decode_ns_per_packet)) ns/packet   allocations \(decodeAllocations)"
            )
            print(
                "  receive (state)    \(format(result.receive_ns_per_packet)) ns/packet   allocations \(receiveAllocations)"
            )
            print(
                "  descriptor encode  \(format(result.descriptor_encode_ns_per_packet)) ns/packet   allocations \(descriptorAllocations)"
            )
            print("  allocation counter self-check: \(counterCheck) allocations seen for 100 deliberate ones")
            print("  machine: \(result.machine.cpu), \(result.machine.cores) cores, \(result.machine.configuration)")
        }
    }
}

func format(_ value: Double) -> String {
    let rounded = (value * 10).rounded() / 10
    return String(rounded)
}

/// Walks everything a receiver would use.
struct DecodeVisitor: FCPConnectionDelegate {
    var sink = 0
    var slots = 0
    var reports = 0
    mutating func fcpDidReset() {}
    mutating func fcpAcknowledged(sequence: UInt64) { sink &+= 1 }
    mutating func fcpNegativelyAcknowledged(sequence: UInt64) { sink &+= 1 }
    mutating func fcpTransmissionRequested() {}
    mutating func fcpReceivedAlloc(_ payload: FCPAllocPayloadView) {
        var walker = AllocDescriptorWalker(
            baseSlot: UInt64(payload.baseTimeslot), destinationCount: payload.destinationCount,
            descriptors: payload.descriptors)
        while let step = walker.next() {
            if case .allocation(_, let slot, let index) = step {
                sink &+= Int(truncatingIfNeeded: slot) &+ Int(payload.destination(index - 1))
                slots += 1
            }
        }
    }
    mutating func fcpReceivedRequests(_ payload: FCPRequestsPayloadView) {
        for i in 0..<payload.count {
            let e = payload.entry(i)
            sink &+= Int(e.destination) &+ Int(e.count)
        }
        reports += payload.count
    }
}
