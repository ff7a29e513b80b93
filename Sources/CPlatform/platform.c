#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>

#include "CPlatform.h"

int fp_pin_current_thread(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int fp_set_thread_name(const char *name) {
    char shortened[16];
    strncpy(shortened, name, sizeof(shortened) - 1);
    shortened[sizeof(shortened) - 1] = 0;
    return pthread_setname_np(pthread_self(), shortened);
}

int fp_current_cpu(void) { return sched_getcpu(); }

int fp_available_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    return CPU_COUNT(&set);
}

void fp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

int fp_receive_batch(int fd, unsigned char *buffers, int stride, int *lengths, unsigned int *sources,
                     unsigned long long *timestamps, int count) {
    if (count <= 0) return 0;
    if (count > FP_MAX_BATCH) count = FP_MAX_BATCH;
    struct mmsghdr messages[FP_MAX_BATCH];
    struct iovec vectors[FP_MAX_BATCH];
    struct sockaddr_in from[FP_MAX_BATCH];
    // Room for one SCM_TIMESTAMPNS per datagram, aligned as cmsg headers need.
    union {
        char bytes[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control[FP_MAX_BATCH];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = buffers + (size_t)i * (size_t)stride;
        vectors[i].iov_len = (size_t)stride;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &from[i];
        messages[i].msg_hdr.msg_namelen = sizeof(from[i]);
        if (timestamps) {
            messages[i].msg_hdr.msg_control = control[i].bytes;
            messages[i].msg_hdr.msg_controllen = sizeof(control[i].bytes);
        }
    }
    // MSG_TRUNC: report the real length of a datagram larger than its buffer, so the
    // caller can count it as too long rather than parse a cut copy.
    int n = recvmmsg(fd, messages, (unsigned int)count, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        lengths[i] = (int)messages[i].msg_len;
        sources[i] = messages[i].msg_hdr.msg_namelen >= sizeof(struct sockaddr_in) ? from[i].sin_addr.s_addr : 0;
        if (!timestamps) continue;
        timestamps[i] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&messages[i].msg_hdr); c; c = CMSG_NXTHDR(&messages[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
                c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
                struct timespec t;
                memcpy(&t, CMSG_DATA(c), sizeof(t));
                timestamps[i] = (unsigned long long)t.tv_sec * 1000000000ULL + (unsigned long long)t.tv_nsec;
            }
        }
    }
    return n;
}

int fp_enable_receive_timestamps(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) == 0 ? 0 : errno;
}

int fp_send_batch(int fd, const unsigned char *buffers, int stride, const int *lengths,
                  const unsigned int *destinations, int count) {
    if (count <= 0) return 0;
    if (count > FP_MAX_BATCH) count = FP_MAX_BATCH;
    struct mmsghdr messages[FP_MAX_BATCH];
    struct iovec vectors[FP_MAX_BATCH];
    struct sockaddr_in to[FP_MAX_BATCH];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    memset(to, 0, sizeof(struct sockaddr_in) * (size_t)count);
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = (void *)(buffers + (size_t)i * (size_t)stride);
        vectors[i].iov_len = (size_t)lengths[i];
        to[i].sin_family = AF_INET;
        to[i].sin_addr.s_addr = destinations[i];
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &to[i];
        messages[i].msg_hdr.msg_namelen = sizeof(to[i]);
    }
    int n = sendmmsg(fd, messages, (unsigned int)count, MSG_DONTWAIT);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    return n;
}

int fp_wait_readable(int fd, long long timeout_ns) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    struct timespec t;
    struct timespec *tp = NULL;
    if (timeout_ns >= 0) {
        t.tv_sec = (time_t)(timeout_ns / 1000000000LL);
        t.tv_nsec = (long)(timeout_ns % 1000000000LL);
        tp = &t;
    }
    int r = ppoll(&p, 1, tp, NULL);
    if (r < 0) return -errno;
    return r > 0 ? 1 : 0;
}

int fp_set_timer_slack(unsigned long nanoseconds) { return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0) == 0 ? 0 : errno; }

int fp_filter_destination(int fd, unsigned int network, unsigned int mask) {
    // A raw IPv4 socket's filter sees the packet from its IP header: the destination is
    // the 32-bit word at offset 16 (BPF loads it in host order).
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ntohl(mask)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(network & mask), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xFFFF),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog program = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) == 0 ? 0 : errno;
}

// libnuma is opened at run time: the build needs no NUMA headers, and a machine without
// the library (or with one node, where placement means nothing) still runs.
struct fp_numa {
    int loaded;  // 0: not tried, 1: usable, -1: missing
    int (*available)(void);
    int (*configured_nodes)(void);
    int (*node_of_cpu)(int);
    void (*set_preferred)(int);
};

static struct fp_numa numa;

static int fp_numa_load(void) {
    if (numa.loaded != 0) return numa.loaded;
    void *library = dlopen("libnuma.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        numa.loaded = -1;
        return -1;
    }
    numa.available = (int (*)(void))dlsym(library, "numa_available");
    numa.configured_nodes = (int (*)(void))dlsym(library, "numa_num_configured_nodes");
    numa.node_of_cpu = (int (*)(int))dlsym(library, "numa_node_of_cpu");
    numa.set_preferred = (void (*)(int))dlsym(library, "numa_set_preferred");
    if (!numa.available || !numa.configured_nodes || !numa.node_of_cpu || !numa.set_preferred ||
        numa.available() < 0) {
        numa.loaded = -1;
        return -1;
    }
    numa.loaded = 1;
    return 1;
}

int fp_numa_nodes(void) {
    if (fp_numa_load() < 0) return -1;
    return numa.configured_nodes();
}

int fp_numa_node_of_cpu(int cpu) {
    if (fp_numa_load() < 0) return -1;
    return numa.node_of_cpu(cpu);
}

int fp_numa_prefer_node(int node) {
    if (fp_numa_load() < 0) return -1;
    numa.set_preferred(node);
    return 0;
}

int fp_tun_open(const char *name, char *actual) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq r;
    memset(&r, 0, sizeof(r));
    // EXCL: never attach to a persistent fp0 someone else made (its routes would be stale).
    // ifr_flags is a signed short and IFF_TUN_EXCL its top bit: the kernel reads the bits.
    r.ifr_flags = (short)(unsigned short)(IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL);
    strncpy(r.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &r) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    memcpy(actual, r.ifr_name, IFNAMSIZ);
    actual[IFNAMSIZ - 1] = 0;
    return fd;
}

int fp_set_mark(int fd, unsigned int mark) {
    return setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0 ? 0 : errno;
}

int fp_wait_readable2(int a, int b, long long timeout_ns) {
    struct pollfd p[2] = {{.fd = a, .events = POLLIN, .revents = 0}, {.fd = b, .events = POLLIN, .revents = 0}};
    struct timespec t;
    struct timespec *tp = NULL;
    if (timeout_ns >= 0) {
        t.tv_sec = (time_t)(timeout_ns / 1000000000LL);
        t.tv_nsec = (long)(timeout_ns % 1000000000LL);
        tp = &t;
    }
    int r = ppoll(p, 2, tp, NULL);
    if (r < 0) return -errno;
    return r > 0 ? 1 : 0;
}

long fp_read_packet(int fd, void *buffer, unsigned long capacity) {
    ssize_t n = read(fd, buffer, capacity);
    if (n >= 0) return (long)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -errno;
}

int fp_send_ipv4(int fd, const void *packet, unsigned long length, unsigned int destination) {
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = destination;
    ssize_t n = sendto(fd, packet, length, MSG_DONTWAIT, (const struct sockaddr *)&to, sizeof(to));
    return n < 0 ? errno : 0;
}

int fp_bind_device(int fd, const char *name) {
    return setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name)) == 0 ? 0 : errno;
}

int fp_set_realtime(int priority) {
    struct sched_param p;
    memset(&p, 0, sizeof(p));
    p.sched_priority = priority;
    return pthread_setschedparam(pthread_self(), priority > 0 ? SCHED_FIFO : SCHED_OTHER, &p);
}
