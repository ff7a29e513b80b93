// swift-tools-version: 6.1
// Fastpass: a centralised datacenter arbiter (timeslot allocation and path selection)
// and the host agent that sends each packet in its granted timeslot.

import PackageDescription

// DPDK from Debian's libdpdk-dev (22.11). SwiftPM cannot read Debian's libdpdk.pc (its
// description spans lines) and refuses `-include` and `-march` from it, so the flags are
// spelled out, and only with the DPDK trait: the default build needs no DPDK.
let dpdkCFlags = [
    "-I/usr/include/dpdk", "-I/usr/include/x86_64-linux-gnu/dpdk", "-include", "rte_config.h", "-march=corei7",
]
let dpdkLibraries = ["rte_ethdev", "rte_mbuf", "rte_mempool", "rte_ring", "rte_net", "rte_eal", "rte_kvargs", "numa"]

let package = Package(
    name: "fastpass",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FastpassProtocol", targets: ["FastpassProtocol"]),
        .library(name: "FastpassArbiter", targets: ["FastpassArbiter"]),
        .library(name: "FastpassAgent", targets: ["FastpassAgent"]),
        .library(name: "FastpassFabric", targets: ["FastpassFabric"]),
        .executable(name: "fastpass-bench", targets: ["fastpass-bench"]),
        .executable(name: "fastpass-sim", targets: ["fastpass-sim"]),
        .executable(name: "fastpass-arbiter", targets: ["fastpass-arbiter"]),
        .executable(name: "fastpassctl", targets: ["fastpassctl"]),
        .executable(name: "fastpass-agent", targets: ["fastpass-agent"]),
    ],
    traits: [
        .trait(
            name: "DPDK",
            description: "The DPDK packet I/O backend (needs libdpdk-dev and libnuma-dev): --io dpdk.")
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // FCP: codec, connection state machine and the demand bookkeeping both ends share.
        // Sans-IO: no sockets, no threads, no clock reads.
        .target(
            name: "FastpassProtocol",
            path: "Sources/Protocol"
        ),
        // Memory the hot paths allocate once and free by ownership: a fixed buffer and a
        // binary heap over one. No dependencies.
        .target(
            name: "FixedStorage",
            path: "Sources/FixedStorage"
        ),
        // Linux calls the Glibc module does not export: thread pinning, the CPU relax hint.
        .target(
            name: "CPlatform",
            path: "Sources/CPlatform"
        ),
        // The arbiter's core: topology, timeslot allocator, path selection, sans-IO; and the
        // threaded pipeline that runs the same allocation stages on pinned cores.
        .target(
            name: "FastpassArbiter",
            dependencies: [
                "FastpassProtocol", "CPlatform", "FixedStorage", .product(name: "Atomics", package: "swift-atomics"),
            ],
            path: "Sources/Arbiter"
        ),
        // The host agent's core: classifies outgoing packets, queues them per destination,
        // turns them into timeslots of demand and releases them at their slot. Sans-IO.
        .target(
            name: "FastpassAgent",
            dependencies: ["FastpassProtocol"],
            path: "Sources/EndpointAgent"
        ),
        // The seeded random generator the simulator, the benchmarks and the tests share.
        .target(
            name: "SeededRandom",
            path: "Sources/SeededRandom"
        ),
        // A discrete-event leaf–spine fabric that runs the real arbiter and agent cores on a
        // virtual clock, with a DCTCP-style baseline transport for comparison.
        .target(
            name: "FastpassFabric",
            dependencies: ["FastpassProtocol", "FastpassArbiter", "FastpassAgent", "SeededRandom", "FixedStorage"],
            path: "Sources/Fabric"
        ),
        // DPDK behind plain C calls. Without the DPDK trait it compiles to stubs that say
        // how to build with it, so nothing above needs conditional code.
        .target(
            name: "DPDKShim",
            path: "Sources/DPDKShim",
            cSettings: [
                .define("FASTPASS_HAVE_DPDK", .when(traits: ["DPDK"])),
                .unsafeFlags(dpdkCFlags, .when(traits: ["DPDK"])),
            ],
            linkerSettings: dpdkLibraries.map { .linkedLibrary($0, .when(traits: ["DPDK"])) }
        ),
        // Packet I/O behind one small interface: raw IPv4 sockets of protocol 222 (batched)
        // or a DPDK port; the real-time clock, thread pinning. The only code besides the
        // daemons that touches sockets, ports and threads.
        .target(
            name: "PacketIO",
            dependencies: ["CPlatform", "DPDKShim", "FixedStorage"],
            path: "Sources/PacketIO"
        ),
        // The daemons around the cores: configuration, the arbiter's communication thread,
        // the agent's pacing thread with its TUN device and routes, metrics over HTTP,
        // systemd notification, and the command-line front end both executables share.
        .target(
            name: "FastpassDaemon",
            dependencies: [
                "FastpassArbiter", "FastpassAgent", "FastpassProtocol", "FastpassStatus", "PacketIO", "FixedStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/Daemon"
        ),
        .executableTarget(
            name: "fastpass-arbiter",
            dependencies: ["FastpassDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/fastpass-arbiter"
        ),
        .executableTarget(
            name: "fastpass-agent",
            dependencies: ["FastpassDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/fastpass-agent"
        ),
        // The daemons' status documents as Codable types, shared by the daemons that encode
        // them and fastpassctl and the benchmarks that decode them. Foundation only.
        .target(
            name: "FastpassStatus",
            path: "Sources/Status"
        ),
        // Reads a daemon's HTTP endpoint with a plain socket, for fastpassctl and the benchmarks.
        .target(
            name: "FastpassStatusClient",
            path: "Sources/StatusClient"
        ),
        .executableTarget(
            name: "fastpassctl",
            dependencies: [
                "FastpassStatus", "FastpassStatusClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/fastpassctl"
        ),
        .executableTarget(
            name: "fastpass-sim",
            dependencies: ["FastpassFabric", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/fastpass-sim"
        ),
        // Counts malloc calls by interposing the allocator inside the benchmark binary only,
        // so benchmarks can prove the hot paths allocate nothing.
        .target(
            name: "MallocCounter",
            path: "Sources/MallocCounter"
        ),
        .executableTarget(
            name: "fastpass-bench",
            dependencies: [
                "FastpassProtocol",
                "FastpassArbiter",
                "CPlatform",
                "MallocCounter",
                "SeededRandom",
                "FixedStorage",
                "FastpassDaemon",
                "FastpassStatus",
                "FastpassStatusClient",
                "PacketIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/fastpass-bench"
        ),
        .testTarget(
            name: "ProtocolTests",
            dependencies: ["FastpassProtocol", "TestSupport"],
            path: "Tests/ProtocolTests"
        ),
        // What several test suites share: the seeded random generator, seeded as they were;
        // the virtual control network between an arbiter and its hosts; FCP packet helpers.
        .target(
            name: "TestSupport",
            dependencies: ["SeededRandom", "FastpassProtocol"],
            path: "Tests/Support"
        ),
        .testTarget(
            name: "ArbiterTests",
            dependencies: ["FastpassArbiter", "FastpassProtocol", "TestSupport"],
            path: "Tests/ArbiterTests"
        ),
        .testTarget(
            name: "AgentTests",
            dependencies: ["FastpassAgent", "FastpassArbiter", "FastpassProtocol", "TestSupport"],
            path: "Tests/AgentTests"
        ),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "FastpassDaemon", "FastpassArbiter", "FastpassProtocol", "FastpassStatus", "PacketIO",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/DaemonTests"
        ),
        .testTarget(
            name: "StatusTests",
            dependencies: ["FastpassStatus"],
            path: "Tests/StatusTests"
        ),
        .testTarget(
            name: "PacketIOTests",
            dependencies: ["PacketIO", "TestSupport"],
            path: "Tests/PacketIOTests"
        ),
        .testTarget(
            name: "FixedStorageTests",
            dependencies: ["FixedStorage", "TestSupport"],
            path: "Tests/FixedStorageTests"
        ),
        .testTarget(
            name: "FabricTests",
            dependencies: ["FastpassFabric"],
            path: "Tests/FabricTests"
        ),
    ]
)
