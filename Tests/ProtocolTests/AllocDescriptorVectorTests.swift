import Foundation
import Testing

@testable import FastpassProtocol

/// One interpreted descriptor byte in the vectors' vocabulary.
struct InterpretedDescriptor: Equatable, CustomStringConvertible {
    var byteIndex: Int
    var byte: UInt8
    var kind: String
    var slot: UInt64?
    var destinationIndex: Int?
    var destination: UInt16?
    var verdict: String?

    var description: String {
        "[\(byteIndex)] \(kind) slot=\(slot.map(String.init) ?? "-") idx=\(destinationIndex.map(String.init) ?? "-") dst=\(destination.map(String.init) ?? "-") \(verdict ?? "")"
    }

    init(json r: [String: Any]) throws {
        byteIndex = try r.int("byte_index")
        byte = UInt8(try r.int("byte"))
        kind = try r.string("kind")
        slot = r["tslot"] != nil ? try r.u64("tslot") : nil
        destinationIndex = r["dst_index"] != nil ? try r.int("dst_index") : nil
        destination = r["dst"] != nil ? UInt16(try r.int("dst")) : nil
        verdict = r["verdict"] as? String
        if let destination, let node = r["node"], let path = r["path"] {
            // The vectors spell out the split of the raw destination; keep ourselves honest.
            precondition(Int(destination & 0x3FFF) == (node as? Int) && Int(destination >> 14) == (path as? Int))
        }
    }

    init(
        byteIndex: Int, byte: UInt8, kind: String, slot: UInt64?, destinationIndex: Int?, destination: UInt16?,
        verdict: String?
    ) {
        self.byteIndex = byteIndex
        self.byte = byte
        self.kind = kind
        self.slot = slot
        self.destinationIndex = destinationIndex
        self.destination = destination
        self.verdict = verdict
    }
}

/// What a reference endpoint makes of one ALLOC payload: the walk, the time-window
/// verdicts, and the demand check, with the library's walker and window.
struct EndpointInterpretation {
    var entries: [InterpretedDescriptor] = []
    var abortedAt: Int?
    var tooLate = 0
    var premature = 0
    var unwanted = 0
    var admitted = 0

    init(
        baseField: UInt16, destinations: [UInt16], descriptors: [UInt8], currentSlot: UInt64,
        window: AllocationTimeWindow, demand: inout [UInt16: UInt64], defaultDemand: UInt64
    ) {
        let base = ReferenceTimeslot.widenAllocBase(UInt32(baseField) << 4, currentSlot: currentSlot)
        descriptors.withUnsafeBytes { raw in
            var walker = AllocDescriptorWalker(baseSlot: base, destinationCount: destinations.count, descriptors: raw)
            while let step = walker.next() {
                switch step {
                case .skip(let i, let after):
                    entries.append(
                        .init(
                            byteIndex: i, byte: descriptors[i], kind: "skip", slot: after, destinationIndex: nil,
                            destination: nil, verdict: nil))
                case .illegalIndex(let i, let index):
                    entries.append(
                        .init(
                            byteIndex: i, byte: descriptors[i], kind: "illegal_index", slot: nil,
                            destinationIndex: index, destination: nil, verdict: nil))
                    abortedAt = i
                case .allocation(let i, let slot, let index):
                    let dst = destinations[index - 1]
                    let verdict: String
                    switch window.classify(slot: slot, currentSlot: currentSlot) {
                    case .tooLate: verdict = "too_late"; tooLate += 1
                    case .premature: verdict = "premature"; premature += 1
                    case .inWindow:
                        let left = demand[dst] ?? defaultDemand
                        if left == 0 {
                            verdict = "unwanted"; unwanted += 1
                        } else {
                            verdict = "accepted"; admitted += 1
                            demand[dst] = left - 1
                        }
                    }
                    entries.append(
                        .init(
                            byteIndex: i, byte: descriptors[i], kind: "alloc", slot: slot, destinationIndex: index,
                            destination: dst, verdict: verdict))
                }
            }
        }
    }
}

extension ReferenceVectorTests {
    func checkAllocDescriptors(_ report: inout VectorReport) throws {
        let file = try ReferenceVectors.load("alloc_desc.json")
        try checkAllocDecodeCases(try file.dicts("decode_cases"), &report)
        try checkAllocEncodeCases(try file.dicts("encode_cases"), &report)
    }

    func checkAllocDecodeCases(_ cases: [[String: Any]], _ report: inout VectorReport) throws {
        for c in cases {
            report.ran("alloc_desc")
            let id = "alloc decode '\(try c.string("note"))'"
            let current = try c.u64("current_timeslot")
            report.check(id, "current_timeslot", ReferenceTimeslot.slot(atNanoseconds: try c.u64("now_ns")), current)
            let baseField = UInt16(try c.int("base_tslot_field"))
            report.check(
                id, "full_base", ReferenceTimeslot.widenAllocBase(UInt32(baseField) << 4, currentSlot: current),
                try c.u64("full_base_tslot"))
            let demandSpec = try c.dict("demand")
            var demand: [UInt16: UInt64] = [:]
            for (k, v) in try demandSpec.dict("per_dst") { demand[UInt16(k)!] = try anyU64(v) }
            let window = AllocationTimeWindow(
                missThreshold: try c.u64("miss_threshold"), maxPreload: try c.u64("max_preload"))
            let got = EndpointInterpretation(
                baseField: baseField, destinations: try c.array("dsts").map { UInt16(try anyU64($0)) },
                descriptors: try c.bytes("tslot_desc"), currentSlot: current, window: window, demand: &demand,
                defaultDemand: try demandSpec.u64("default"))
            report.check(id, "result", got.entries, try c.dicts("result").map(InterpretedDescriptor.init(json:)))
            report.check(id, "aborted_at", got.abortedAt, c["aborted_at"] as? Int)
            let stats = try c.dict("stats")
            report.check(id, "alloc_too_late", got.tooLate, try stats.int("alloc_too_late"))
            report.check(id, "alloc_premature", got.premature, try stats.int("alloc_premature"))
            report.check(id, "unwanted_alloc", got.unwanted, try stats.int("unwanted_alloc"))
            report.check(id, "admitted_timeslots", got.admitted, try stats.int("admitted_timeslots"))
        }
    }

    func checkAllocEncodeCases(_ cases: [[String: Any]], _ report: inout VectorReport) throws {
        for c in cases {
            report.ran("alloc_desc")
            let id = "alloc encode '\(try c.string("note"))'"
            let packets = try c.dicts("packets")
            guard let firstView = try packets.first?.dict("endpoint_view") else {
                report.fail(id, "no packets"); continue
            }
            let current = try firstView.u64("current_timeslot")
            var noDemandLimit: [UInt16: UInt64] = [:]

            // 1. The reference's own bytes, interpreted by our decoder as its endpoint did.
            var referenceSlots: [String] = []
            for (p, packet) in packets.enumerated() {
                let payload = try packet.bytes("alloc_payload")
                let view = try packet.dict("endpoint_view")
                payload.withUnsafeBytes { raw in
                    guard let parsed = FCPAllocPayloadView.parse(raw, at: 0) else {
                        report.fail(id, "packet \(p): payload does not parse"); return
                    }
                    report.check(id, "packet \(p) length", parsed.length, payload.count)
                    report.check(id, "packet \(p) base", Int(parsed.baseField), (try? packet.int("base_tslot")) ?? -1)
                    report.check(
                        id, "packet \(p) dsts", (0..<parsed.destinationCount).map(parsed.destination),
                        (try? packet.array("dsts").map { UInt16(try anyU64($0)) }) ?? [])
                    report.check(
                        id, "packet \(p) desc", hexString(parsed.descriptors), (try? packet.string("tslot_desc")) ?? "")
                }
                guard let parsedBase = payload.count >= 4 ? UInt16(payload[2]) << 8 | UInt16(payload[3]) : nil else {
                    continue
                }
                report.check(
                    id, "packet \(p) full base",
                    ReferenceTimeslot.widenAllocBase(UInt32(parsedBase) << 4, currentSlot: current),
                    try view.u64("full_base_tslot"))
                let got = EndpointInterpretation(
                    baseField: parsedBase, destinations: try packet.array("dsts").map { UInt16(try anyU64($0)) },
                    descriptors: try packet.bytes("tslot_desc"), currentSlot: current, window: .reference,
                    demand: &noDemandLimit, defaultDemand: .max)
                report.check(
                    id, "packet \(p) endpoint view", got.entries,
                    try view.dicts("result").map(InterpretedDescriptor.init(json:)))
                referenceSlots += got.entries.filter { $0.kind == "alloc" }.map {
                    "\($0.slot!)->\($0.destination!):\($0.verdict!)"
                }
            }

            // 2. Our encoder on the same allocations: same fell-off list, and the endpoint
            //    reads the same slots, destinations and verdicts from our bytes.
            var pending = PendingAllocations(head: try c.u64("window_head_before"))
            var fellOff: [String] = []
            for a in try c.dicts("allocations") {
                let result = pending.add(slot: try a.u64("tslot"), destination: UInt16(try a.int("dst"))) {
                    (slot: UInt64, dst: UInt16) in
                    fellOff.append("\(slot)->\(dst)")
                }
                report.check(id, "add", result, .added)
            }
            report.check(
                id, "fell off", fellOff,
                try c.dicts("fell_off_window").map { "\(try $0.u64("tslot"))->\(try $0.int("dst"))" })
            var ourSlots: [String] = []
            var block = AllocBlock()
            var rounds = 0
            while !pending.isEmpty && rounds < 100 {
                rounds += 1
                pending.takeBlock(into: &block, maxDescriptorBytes: PendingAllocations.referenceMaxDescriptorBytes)
                var dsts: [UInt16] = []
                for i in 0..<block.destinationCount { dsts.append(block.destination(i)) }
                let descriptors = (0..<block.descriptorCount).map(block.descriptor)
                if Set(dsts).count != dsts.count { report.fail(id, "our encoder listed a destination twice: \(dsts)") }
                if descriptors.count % 2 != 0 || descriptors.count > 64 {
                    report.fail(id, "descriptor count \(descriptors.count)")
                }
                for (i, byte) in descriptors.enumerated() where byte >> 4 == 0 {
                    let isFinalPad = i == descriptors.count - 1 && byte == 0
                    let followedByAllocation = i + 1 < descriptors.count && descriptors[i + 1] >> 4 != 0
                    if !isFinalPad && !followedByAllocation { report.fail(id, "dangling skip at \(i)") }
                }
                // Round-trip through the wire format.
                var wire = [UInt8](repeating: 0, count: 200)
                let length: Int = wire.withUnsafeMutableBytes { buffer in
                    var writer = FCPPacketWriter(buffer)
                    do throws(FCPEncodeError) { try writer.writeAlloc(block) } catch { return -1 }
                    return writer.length
                }
                guard length > 0 else { report.fail(id, "writeAlloc failed"); break }
                // Interpret what is on the wire, not the block it was written from.
                let parsed: (UInt16, [UInt16], [UInt8])? = wire.withUnsafeBytes { raw in
                    guard
                        let view = FCPAllocPayloadView.parse(UnsafeRawBufferPointer(rebasing: raw[0..<length]), at: 0),
                        view.length == length
                    else { return nil }
                    return (view.baseField, (0..<view.destinationCount).map(view.destination), Array(view.descriptors))
                }
                guard let (wireBase, wireDestinations, wireDescriptors) = parsed else {
                    report.fail(id, "our ALLOC does not parse back")
                    break
                }
                report.check(id, "wire destinations", wireDestinations, dsts)
                let got = EndpointInterpretation(
                    baseField: wireBase, destinations: wireDestinations, descriptors: wireDescriptors,
                    currentSlot: current, window: .reference, demand: &noDemandLimit, defaultDemand: .max)
                if got.abortedAt != nil { report.fail(id, "our bytes abort the endpoint's walk") }
                ourSlots += got.entries.filter { $0.kind == "alloc" }.map {
                    "\($0.slot!)->\($0.destination!):\($0.verdict!)"
                }
            }
            report.check(id, "remaining pending", pending.count, try c.int("remaining_pending"))
            report.check(id, "slots our endpoint sees", ourSlots.sorted(), referenceSlots.sorted())
        }
    }
}
