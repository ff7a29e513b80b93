/// The baseline transport: a DCTCP-style sender (slow start, ECN-proportional back-off, fast
/// retransmit, retransmission metrics.timeouts) and a cumulative-ACK receiver.
extension Simulation {
    // MARK: Baseline transport

    func sendWindow(_ f: Int) {
        var flow = flows[f]
        while flow.nextToSend < flow.packetCount && Double(flow.nextToSend - flow.unacknowledged) < flow.cwnd {
            let seq = flow.nextToSend
            let i = newPacket(
                Packet(
                    kind: .data, flow: Int32(f), sequence: seq, source: flow.source, destination: flow.destination,
                    ipBytes: ipBytes(flow: f, sequence: seq), spine: flow.spine, created: now))
            flow.nextToSend += 1
            flows[f] = flow
            enqueue(i, port: nicPort[Int(flow.source)])
            flow = flows[f]
        }
        if !flow.timerArmed && flow.unacknowledged < flow.nextToSend {
            flow.timerArmed = true
            flow.timerGeneration &+= 1
            events.schedule(.retransmissionTimeout, at: now + flow.rto, a: Int32(f), b: flow.timerGeneration)
        }
        flows[f] = flow
    }

    /// Counts packet `sequence` of flow `f` as delivered in order.
    func deliverInOrder(_ f: Int, sequence: Int32) {
        flows[f].expected += 1
        let payload = UInt64(ipBytes(flow: f, sequence: sequence) - 40)
        metrics.deliveredPayload &+= payload
        if rackOfEndpoint[Int(flows[f].source)] != rackOfEndpoint[Int(flows[f].destination)] {
            metrics.deliveredInterRackPayload &+= payload
        }
        if flows[f].expected == flows[f].packetCount { flows[f].finish = now }
    }

    func receiveAck(_ i: Int32) {
        let p = packets[Int(i)]
        let f = Int(p.flow)
        freePacket(i)
        var flow = flows[f]
        let ack = p.sequence
        let b = configuration.baseline
        if ack > flow.unacknowledged {
            let newly = Int(ack - flow.unacknowledged)
            flow.unacknowledged = ack
            if flow.nextToSend < ack { flow.nextToSend = ack }
            flow.duplicateAcks = 0
            flow.ackedInWindow += newly
            if p.echo { flow.markedInWindow += newly }
            if ack >= flow.windowEnd {
                let fraction = flow.ackedInWindow > 0 ? Double(flow.markedInWindow) / Double(flow.ackedInWindow) : 0
                flow.alpha = (1 - b.gain) * flow.alpha + b.gain * fraction
                if flow.markedInWindow > 0 {
                    flow.cwnd = max(1, flow.cwnd * (1 - flow.alpha / 2))
                    flow.ssthresh = flow.cwnd
                }
                flow.ackedInWindow = 0
                flow.markedInWindow = 0
                flow.windowEnd = flow.nextToSend
            }
            if flow.cwnd < flow.ssthresh { flow.cwnd += Double(newly) } else { flow.cwnd += Double(newly) / flow.cwnd }
            flow.rto = b.minimumRetransmissionTimeoutNanoseconds
            flow.timerGeneration &+= 1
            flow.timerArmed = false
        } else if ack == flow.unacknowledged && flow.nextToSend > flow.unacknowledged {
            flow.duplicateAcks += 1
            if flow.duplicateAcks == 3 {
                flow.ssthresh = max(flow.cwnd / 2, 2)
                flow.cwnd = flow.ssthresh
                flow.nextToSend = flow.unacknowledged
                flow.timerGeneration &+= 1
                flow.timerArmed = false
            }
        }
        flows[f] = flow
        if flow.unacknowledged < flow.packetCount { sendWindow(f) }
    }

    func retransmissionTimeout(_ f: Int, generation: UInt32) {
        var flow = flows[f]
        guard flow.timerArmed && generation == flow.timerGeneration && flow.unacknowledged < flow.packetCount else {
            return
        }
        metrics.timeouts &+= 1
        flow.ssthresh = max(flow.cwnd / 2, 2)
        flow.cwnd = 1
        flow.nextToSend = flow.unacknowledged
        flow.duplicateAcks = 0
        flow.rto = min(flow.rto * 2, configuration.baseline.maximumRetransmissionTimeoutNanoseconds)
        flow.timerArmed = false
        flows[f] = flow
        sendWindow(f)
    }
}
