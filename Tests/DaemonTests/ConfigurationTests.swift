import FastpassDaemon
import PacketIO
import Testing

@Suite("Arbiter daemon configuration")
struct ConfigurationTests {
    static let valid = """
        listen: 10.0.0.1
        metrics: 127.0.0.1:9464
        topology:
          racks: 2
          spines: 2
          host_gbps: 10
          hosts:
            - {id: 1, address: 10.0.1.1, rack: 0}
            - {id: 2, address: 10.0.2.1, rack: 1}
        """

    func error(_ yaml: String, _ overrides: [(String, String)] = []) -> String? {
        do {
            _ = try ArbiterDaemonConfiguration.parse(yaml: yaml, file: "test.yaml", overrides: overrides)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("a minimal file gets the defaults; flags override fields")
    func defaultsAndOverrides() throws {
        let c = try ArbiterDaemonConfiguration.parse(yaml: Self.valid, file: "t")
        #expect(c.listen == IPv4.parse("10.0.0.1"))
        #expect(c.batchSize == 16 && c.lookaheadSlots == nil && c.communicationCore == nil)
        #expect(c.topology.uplinkGbpsPerSpine == 5)  // one host per rack, 10 Gbit/s over 2 spines
        let o = try ArbiterDaemonConfiguration.parse(
            yaml: Self.valid, file: "t",
            overrides: [("batch_size", "8"), ("cores.communication", "1"), ("topology.spines", "1")])
        #expect(o.batchSize == 8 && o.communicationCore == 1 && o.topology.spines == 1)
    }

    @Test("reference endpoints on several spines: the check states that their packets are booked on spine 0")
    func referencePathNote() throws {
        #expect(try ArbiterDaemonConfiguration.parse(yaml: Self.valid, file: "t").notes.isEmpty)
        let c = try ArbiterDaemonConfiguration.parse(
            yaml: Self.valid, file: "t", overrides: [("topology.reference_endpoints", "true")])
        #expect(c.notes.count == 1)
        let note = c.notes.first ?? ""
        #expect(note.hasPrefix("topology.reference_endpoints:") && note.contains("spine 0"), "\(note)")
        #expect(note.contains("docs/operations.md"))
        let one = try ArbiterDaemonConfiguration.parse(
            yaml: Self.valid, file: "t",
            overrides: [("topology.reference_endpoints", "true"), ("topology.spines", "1")])
        #expect(one.notes.allSatisfy { !$0.contains("spine 0") })
    }

    @Test("io and the dpdk section: EAL arguments as a list or one string, port settings, clear refusals")
    func dpdkSection() throws {
        let dpdk =
            Self.valid + """

                io: dpdk
                dpdk:
                  eal_args: [-l, "0-1", --no-huge, -m, "256", "--vdev=net_af_packet0,iface=eth0"]
                  port: net_af_packet0
                  rx_descriptors: 512
                  gateway_mac: "02:00:00:00:00:fe"
                  idle_poll_sleep_ns: 2000
                """
        let sockets = try ArbiterDaemonConfiguration.parse(yaml: Self.valid, file: "t")
        #expect(sockets.io == .sockets && sockets.dpdk == nil)
        if DPDKEnvironment.isAvailable {
            let c = try ArbiterDaemonConfiguration.parse(yaml: dpdk, file: "t")
            #expect(c.io == .dpdk)
            #expect(
                c.dpdk?.ealArguments == ["-l", "0-1", "--no-huge", "-m", "256", "--vdev=net_af_packet0,iface=eth0"])
            #expect(c.dpdk?.port == "net_af_packet0" && c.dpdk?.receiveDescriptors == 512)
            #expect(c.dpdk?.transmitDescriptors == 1024 && c.dpdk?.gateway == 0x0200_0000_00FE)
            #expect(c.dpdk?.idlePollSleepNanoseconds == 2000)
            // --set gives the arguments as one string.
            let o = try ArbiterDaemonConfiguration.parse(
                yaml: dpdk, file: "t", overrides: [("dpdk.eal_args", "-l 1 --vdev=net_null0")])
            #expect(o.dpdk?.ealArguments == ["-l", "1", "--vdev=net_null0"])
        } else {
            #expect(error(dpdk)?.contains("--traits DPDK") == true)
        }
        // The section is checked whichever backend is chosen.
        #expect(error(Self.valid + "\nio: dpdk\n")?.contains("dpdk: missing") == true)
        #expect(error(Self.valid + "\nio: netmap\n")?.contains("not one of: sockets, dpdk") == true)
        #expect(error(Self.valid + "\ndpdk: {port: x}\n")?.contains("dpdk.eal_args: missing") == true)
        #expect(error(Self.valid + "\ndpdk: {eal_args: []}\n")?.contains("dpdk.eal_args: empty") == true)
        #expect(
            error(Self.valid + "\ndpdk: {eal_args: [-l], rx_descriptor: 5}\n")?.contains(
                "did you mean 'rx_descriptors'") == true)
        #expect(
            error(Self.valid + "\ndpdk: {eal_args: [-l], gateway_mac: ff:ff:ff:ff:ff:ff}\n")?.contains(
                "not a unicast MAC") == true)
        #expect(error(Self.valid + "\ndpdk: {eal_args: [-l], buffers: 10}\n")?.contains("dpdk.buffers") == true)
    }

    @Test("control_budget: defaults, every field reaching the core, clear refusals")
    func controlBudgetSection() throws {
        let d = try ArbiterDaemonConfiguration.parse(yaml: Self.valid, file: "t").coreConfiguration(authenticator: nil)
        #expect(d.controlPacketsPerSecond == 200_000 && d.controlBurst == 8 && d.minimumControlShare == 100)
        #expect(d.measuresControlCapacity && d.controlTargetLoad == 0.7)
        let c = try ArbiterDaemonConfiguration.parse(
            yaml: Self.valid
                + "\ncontrol_budget: {packets_per_second: 50000, burst: 4, minimum_share: 20, measure: false, target_load: 0.5}\n",
            file: "t"
        ).coreConfiguration(authenticator: nil)
        #expect(c.controlPacketsPerSecond == 50_000 && c.controlBurst == 4 && c.minimumControlShare == 20)
        #expect(!c.measuresControlCapacity && c.controlTargetLoad == 0.5)
        let off = try ArbiterDaemonConfiguration.parse(
            yaml: Self.valid, file: "t", overrides: [("control_budget.packets_per_second", "0")])
        #expect(off.coreConfiguration(authenticator: nil).controlPacketsPerSecond == 0)
        #expect(error(Self.valid + "\ncontrol_budget: {burst: 0}\n")?.contains("control_budget.burst") == true)
        #expect(
            error(Self.valid + "\ncontrol_budget: {target_load: 1.5}\n")?.contains("control_budget.target_load") == true
        )
        #expect(error(Self.valid + "\ncontrol_budget: {packet_per_second: 5}\n")?.contains("did you mean") == true)
    }

    @Test("allocator threads: stages and their CPUs, from the file or flags, reach the core's pipeline")
    func allocatorThreads() throws {
        let yaml =
            Self.valid + "\nallocator_threads: 2\ncores:\n  communication: 1\n  allocator: [2, 3]\n  path: 4\n"
        let c = try ArbiterDaemonConfiguration.parse(yaml: yaml, file: "t")
        #expect(c.allocatorThreads == 2 && c.allocatorCores == [2, 3] && c.pathCore == 4)
        let pipeline = c.coreConfiguration(authenticator: nil).pipeline
        #expect(pipeline?.stages == 2 && pipeline?.cpus == [2, 3, 4])
        let inline = try ArbiterDaemonConfiguration.parse(yaml: Self.valid, file: "t")
        #expect(inline.coreConfiguration(authenticator: nil).pipeline == nil)
        let unpinned = try ArbiterDaemonConfiguration.parse(
            yaml: Self.valid, file: "t", overrides: [("allocator_threads", "3"), ("cores.path", "5")])
        #expect(unpinned.coreConfiguration(authenticator: nil).pipeline?.cpus == [-1, -1, -1, 5])
    }

    @Test("NUMA: libnuma, opened at run time, agrees with the kernel's node list")
    func numa() {
        let kernel = NUMAPlacement.sysfsNodeCount()
        #expect(kernel >= 1)
        if let nodes = NUMAPlacement.nodeCount {
            #expect(nodes == kernel)
            let node = NUMAPlacement.node(ofCPU: 0)
            #expect(node != nil && node! < nodes, "CPU 0 on node \(String(describing: node)) of \(nodes)")
        } else {
            print("libnuma1 is not installed: only the kernel's node list was checked")
        }
        #expect(NUMAPlacement.node(ofCPU: 1 << 20) == nil)
        #expect(NUMAPlacement.prefer(nodeOf: nil) == .singleNode)
        if kernel == 1 { #expect(NUMAPlacement.prefer(nodeOf: 0) == .singleNode) }
    }

    @Test("lookahead_slots and send_lead_slots take auto (the default) or a number of slots")
    func sendRuleFields() throws {
        let auto = try ArbiterDaemonConfiguration.parse(
            yaml: Self.valid, file: "t", overrides: [("lookahead_slots", "auto"), ("send_lead_slots", "auto")])
        #expect(auto.lookaheadSlots == nil && auto.sendLeadSlots == nil)
        let fixed = try ArbiterDaemonConfiguration.parse(
            yaml: Self.valid, file: "t", overrides: [("lookahead_slots", "40"), ("send_lead_slots", "24")])
        #expect(fixed.lookaheadSlots == 40 && fixed.sendLeadSlots == 24)
        let core = fixed.coreConfiguration(authenticator: nil)
        #expect(core.lookaheadSlots == 40 && core.sendLeadSlots == 24)
    }

    @Test("every bad field is refused with its name")
    func badFields() {
        let cases: [(String, [(String, String)], String)] = [
            ("topology.spinez", [("topology.spinez", "3")], "did you mean 'spines'"),
            ("batch_size", [("batch_size", "99")], "out of range"),
            ("listen", [("listen", "10.0.1.1")], "also a host"),
            ("listen", [("listen", "ten")], "not an IPv4 address"),
            ("metrics", [("metrics", "127.0.0.1")], "ADDRESS:PORT"),
            ("policy", [("policy", "fair")], "not one of"),
            ("require_authentication", [("require_authentication", "true")], "needs authentication_key_file"),
            ("lookahead_slots", [("lookahead_slots", "60")], "lookahead_slots"),
            ("topology.hosts[0].rack", [], "out of range"),
            ("allocator_threads", [("allocator_threads", "1")], "at least 2"),
            ("realtime_priority", [("realtime_priority", "100")], "out of range"),
            ("cores.allocator", [("cores.allocator", "2,3")], "set allocator_threads"),
            ("cores.allocator", [("allocator_threads", "3"), ("cores.allocator", "2,3")], "one per thread"),
            ("cores.allocator", [("allocator_threads", "2"), ("cores.allocator", "2,x")], "'x' is not a whole number"),
            ("cores.path", [("cores.path", "4")], "set allocator_threads"),
            ("cores.path", [("allocator_threads", "2"), ("cores.path", "1024")], "out of range"),
            ("lookahead_slots", [("allocator_threads", "2"), ("lookahead_slots", "8")], "at least one batch"),
            ("lookahead_slots", [("lookahead_slots", "soon")], "whole number"),
            ("send_lead_slots", [("lookahead_slots", "20"), ("send_lead_slots", "30")], "the lookahead"),
            (
                "cores", [("allocator_threads", "2"), ("cores.allocator", "2,3"), ("cores.communication", "3")],
                "names one twice"
            ),
        ]
        for (field, overrides, reason) in cases {
            let yaml =
                field == "topology.hosts[0].rack"
                ? Self.valid.replacingOccurrences(of: "rack: 0}", with: "rack: 5}") : Self.valid
            let e = error(yaml, overrides)
            #expect(e?.contains(field) == true, "\(field): \(e ?? "accepted")")
            #expect(e?.contains(reason) == true, "\(field): \(e ?? "accepted")")
        }
    }

    @Test("malformed files: not YAML, not a mapping, missing sections")
    func malformed() {
        #expect(error("listen: [1, 2")?.contains("not valid YAML") == true)
        #expect(error("- a\n- b")?.contains("expected a mapping") == true)
        #expect(error("listen: 10.0.0.1")?.contains("topology: missing") == true)
        #expect(error("topology: {}")?.contains("listen: missing") == true)
    }

    @Test("random bytes as a configuration: refused with a reason, never a crash")
    func fuzzed() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789:-[]{},.\n #'\"&*!|>%@`".utf8)
        for _ in 0..<2000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(state % 120) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.append(alphabet[Int(state >> 33) % alphabet.count])
            }
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(error(text) != nil)
        }
    }

    @Test("IPv4 header checks: FCP's protocol, lengths that fit")
    func ipv4Header() {
        var packet = [UInt8](repeating: 0, count: 40)
        packet[0] = 0x45
        packet[2] = 0
        packet[3] = 40
        packet[9] = 222
        packet.withUnsafeBytes { #expect(IPv4.payloadOffset($0) == 20) }
        packet[9] = 6
        packet.withUnsafeBytes { #expect(IPv4.payloadOffset($0) == nil) }
        packet[9] = 222
        packet[3] = 41  // claims more than arrived
        packet.withUnsafeBytes { #expect(IPv4.payloadOffset($0) == nil) }
        packet[3] = 40
        packet[0] = 0x44  // header shorter than 20 bytes
        packet.withUnsafeBytes { #expect(IPv4.payloadOffset($0) == nil) }
        #expect(IPv4.parse("10.0.0.1") == 0x0A00_0001)
        #expect(IPv4.parse("10.0.0.256") == nil && IPv4.parse("10.0.0") == nil && IPv4.parse("01.0.0.1") == nil)
        #expect(IPv4.format(0x0A00_0001) == "10.0.0.1")
    }
}
