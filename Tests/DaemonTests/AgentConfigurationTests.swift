import FastpassDaemon
import FastpassProtocol
import PacketIO
import Testing

@Suite("Agent daemon configuration")
struct AgentDaemonConfigurationTests {
    static let valid = """
        arbiter: 10.0.0.1
        address: 10.0.1.1
        node: 1
        interface: eth0
        peers:
          - {id: 2, address: 10.0.1.2}
          - {id: 3, address: 10.0.2.1}
        """

    func error(_ yaml: String, _ overrides: [(String, String)] = []) -> String? {
        do {
            _ = try AgentDaemonConfiguration.parse(yaml: yaml, file: "agent.yaml", overrides: overrides)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("a minimal file gets the defaults; flags override fields; the core gets them")
    func defaultsAndOverrides() throws {
        let c = try AgentDaemonConfiguration.parse(yaml: Self.valid, file: "t")
        #expect(c.arbiter == IPv4.parse("10.0.0.1") && c.address == IPv4.parse("10.0.1.1") && c.node == 1)
        #expect(c.tun == "fp0" && c.routingTable == 222 && c.mark == 0xFA57 && c.rulePriority == 1000)
        #expect(c.unreachablePolicy == .fallback && c.unreachableAfterNanoseconds == 300_000_000)
        #expect(c.pacing == .sleep && c.pacingCore == nil && c.pacingPriority == 0 && c.metrics == nil)
        #expect(c.peers.map(\.node) == [NodeID(2), NodeID(3)])
        let o = try AgentDaemonConfiguration.parse(
            yaml: Self.valid, file: "t",
            overrides: [
                ("routing.mark", "0x10"), ("unreachable.policy", "hold"), ("unreachable.after_ms", "50"),
                ("pacing.core", "1"), ("pacing.priority", "20"), ("release_lead_ns", "30000"),
                ("late_release_limit_ns", "200000"), ("metrics", "127.0.0.1:9465"), ("bypass_dscp", "46,48"),
            ])
        #expect(o.mark == 16 && o.unreachablePolicy == .hold && o.unreachableAfterNanoseconds == 50_000_000)
        #expect(o.pacingCore == 1 && o.pacingPriority == 20 && o.metrics?.port == 9465)
        let a = o.agentConfiguration()
        #expect(a.releaseLeadNanoseconds == 30_000 && a.lateReleaseLimitNanoseconds == 200_000)
        #expect(a.bypassDSCP == [46, 48] && a.session.node == NodeID(1) && a.peers.count == 2)
    }

    @Test("every bad field is refused with its name")
    func badFields() {
        let cases: [(String, [(String, String)], String)] = [
            ("arbiter", [("arbiter", "10.0.0")], "not an IPv4 address"),
            ("arbiter", [("arbiter", "10.0.1.1")], "this host's own"),
            ("node", [("node", "-1")], "out of range"),
            ("interface", [("interface", "a/b")], "not an interface name"),
            ("tun", [("tun", "a-name-far-too-long")], "not an interface name"),
            ("routing.table", [("routing.table", "254")], "system table"),
            ("routing.mark", [("routing.mark", "0")], "non-zero"),
            ("routing.mark", [("routing.mark", "0x1ffffffff")], "non-zero 32-bit"),
            ("routing.rule_priority", [("routing.rule_priority", "0")], "out of range"),
            ("routing.tabel", [("routing.tabel", "5")], "did you mean 'table'"),
            ("peers[0].address", [("arbiter", "10.0.1.2")], "the arbiter's"),
            ("unreachable.policy", [("unreachable.policy", "drop")], "not one of"),
            ("unreachable.after_ms", [("unreachable.after_ms", "0")], "out of range"),
            ("pacing.mode", [("pacing.mode", "spin")], "not one of"),
            ("pacing.priority", [("pacing.mode", "busy"), ("pacing.priority", "10")], "starve"),
            ("slot_bytes", [("slot_bytes", "100")], "out of range"),
            (
                "per_destination_packet_limit", [("packet_capacity", "16"), ("per_destination_packet_limit", "100")],
                "more than packet_capacity"
            ),
            ("metrics", [("metrics", "9465")], "ADDRESS:PORT"),
        ]
        for (field, overrides, reason) in cases {
            let e = error(Self.valid, overrides)
            #expect(e?.contains(field) == true, "\(field): \(e ?? "accepted")")
            #expect(e?.contains(reason) == true, "\(field): \(e ?? "accepted")")
        }
        #expect(error(Self.valid.replacingOccurrences(of: "id: 2", with: "id: 3"))?.contains("already used") == true)
        #expect(error(Self.valid.replacingOccurrences(of: "id: 2", with: "id: 1"))?.contains("own node") == true)
        #expect(error("arbiter: 10.0.0.1")?.contains("address: missing") == true)
        #expect(
            error(Self.valid.replacingOccurrences(of: "interface: eth0\n", with: ""))?.contains("interface") == true)
    }

    @Test("random bytes as a configuration: refused with a reason, never a crash")
    func fuzzed() {
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789:-[]{},.\n #'\"&*!|>%@`".utf8)
        for _ in 0..<2000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(state % 160) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.append(alphabet[Int(state >> 33) % alphabet.count])
            }
            #expect(error(String(decoding: bytes, as: UTF8.self)) != nil)
        }
    }
}
