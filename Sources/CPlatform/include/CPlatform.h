// Linux calls Swift's Glibc module does not export (they need _GNU_SOURCE).
#ifndef FASTPASS_CPLATFORM_H
#define FASTPASS_CPLATFORM_H

/// Pins the calling thread to one CPU. Returns 0, or the error number.
int fp_pin_current_thread(int cpu);

/// Names the calling thread (at most 15 characters are kept) for top, perf and ps.
int fp_set_thread_name(const char *name);

/// The CPU the calling thread runs on, or -1.
int fp_current_cpu(void);

/// CPUs this process may run on.
int fp_available_cpus(void);

/// A spin-wait hint to the processor (x86 `pause`).
void fp_cpu_relax(void);

/// Asks for the cache line at `address` ahead of a write to it (a hint; never faults).
static inline void fp_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

/// Largest batch `fp_receive_batch` and `fp_send_batch` take in one call.
#define FP_MAX_BATCH 64

/// Receives up to `count` datagrams (count ≤ FP_MAX_BATCH) from `fd` without blocking,
/// each into `buffers + i * stride` (at most `stride` bytes), with its length in
/// `lengths[i]` (the size on the wire; larger than `stride` means it was cut) and its
/// IPv4 source (network byte order) in `sources[i]`. With `timestamps` non-null, the
/// kernel's receive time of each (CLOCK_REALTIME ns; 0 when it gave none: see
/// `fp_enable_receive_timestamps`) goes in `timestamps[i]`. Returns how many arrived (0
/// when none), or -errno.
int fp_receive_batch(int fd, unsigned char *buffers, int stride, int *lengths, unsigned int *sources,
                     unsigned long long *timestamps, int count);

/// Asks the kernel to stamp each datagram `fd` receives with the time it arrived
/// (`SO_TIMESTAMPNS`). Returns 0 or errno.
int fp_enable_receive_timestamps(int fd);

/// Sends `count` datagrams (count ≤ FP_MAX_BATCH) from `buffers + i * stride`, `lengths[i]`
/// bytes each, to the IPv4 addresses `destinations[i]` (network byte order). Returns how
/// many the kernel took, or -errno.
int fp_send_batch(int fd, const unsigned char *buffers, int stride, const int *lengths,
                  const unsigned int *destinations, int count);

/// Waits up to `timeout_ns` (negative: forever) for `fd` to be readable. Returns 1 when
/// it is, 0 on timeout, or -errno (-EINTR when a signal came first).
int fp_wait_readable(int fd, long long timeout_ns);

/// Sets the calling thread's timer slack (how late the kernel may wake it), in ns. 0 or errno.
int fp_set_timer_slack(unsigned long nanoseconds);

/// Makes raw socket `fd` take only IPv4 packets whose destination is in `network`/`mask`
/// (both network byte order), with a classic BPF filter run in the kernel: a load
/// generator's one socket then never copies the packets it sends to the daemon. 0 or errno.
int fp_filter_destination(int fd, unsigned int network, unsigned int mask);

/// NUMA nodes configured, through libnuma (opened at run time); -1 when libnuma is missing
/// or says NUMA is unavailable.
int fp_numa_nodes(void);

/// The NUMA node of `cpu`, or -1 (no libnuma, or no such CPU).
int fp_numa_node_of_cpu(int cpu);

/// Makes the calling thread's new memory come from `node` where it can (-1: from the node
/// the thread runs on, the default). 0, or -1 without libnuma.
int fp_numa_prefer_node(int node);

/// Opens (creating it) the TUN device `name` (IPv4 packets without a header, no packet
/// information prefix), non-blocking and close-on-exec. Not persistent: the kernel removes
/// it when the descriptor closes, so a crashed agent leaves no device behind. Writes the
/// name the kernel gave it to `actual` (16 bytes). Returns the descriptor, or -errno.
int fp_tun_open(const char *name, char *actual);

/// Sets `SO_MARK` on `fd` (routing rules can match it; needs CAP_NET_ADMIN). 0 or errno.
int fp_set_mark(int fd, unsigned int mark);

/// Runs the calling thread under SCHED_FIFO at `priority` (1...99; 0: back to the normal
/// policy). 0 or errno (EPERM without CAP_SYS_NICE or an RLIMIT_RTPRIO allowing it).
int fp_set_realtime(int priority);

/// Makes `fd` send only through the interface `name` (`SO_BINDTODEVICE`). 0 or errno.
int fp_bind_device(int fd, const char *name);

/// Waits up to `timeout_ns` (negative: forever) for `a` or `b` to be readable. Returns
/// 1 when one is, 0 on timeout, or -errno (-EINTR when a signal came first).
int fp_wait_readable2(int a, int b, long long timeout_ns);

/// Reads one packet from `fd` into `buffer` without blocking. Returns its length, 0 when
/// none is waiting, or -errno.
long fp_read_packet(int fd, void *buffer, unsigned long capacity);

/// Sends one IPv4 packet `packet` (its own header included) from raw socket `fd` to
/// `destination` (network byte order). Returns 0 or errno.
int fp_send_ipv4(int fd, const void *packet, unsigned long length, unsigned int destination);

#endif
