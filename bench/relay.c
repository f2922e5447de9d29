/*
 * relay: a UDP relay that makes loopback look like a slow, lossy network (this kernel has no
 * netem). Between a client-facing port and one upstream DNS server (rbldnsd) it adds a fixed
 * one-way delay each way (RTT = 2 x delay + the loopback's own) and drops datagrams with an
 * independent probability each way, from seeded PRNGs so that a run is repeatable.
 *
 *   cc -O2 -Wall -o relay bench/relay.c
 *   ./relay -l 127.0.0.1:5301 -u 127.0.0.1:5300 -d 25 -p 0.01 -s 1 -o stats.json
 *
 *   -l ADDR:PORT  client-facing address (port 0: any; the port is printed on stdout)
 *   -u ADDR:PORT  the upstream server
 *   -d MS         one-way delay, client -> server (default 0); -D MS server -> client (default -d)
 *   -p P          loss probability, client -> server (default 0); -P P server -> client (default -p)
 *   -s SEED       PRNG seed (default 1); each direction has its own generator
 *   -q N          queue capacity per direction, in datagrams (default 16384; power of 2)
 *   -o FILE       write the counters there as JSON at exit and on SIGUSR1 (default stderr)
 *   -t SECS       exit by itself after SECS (default 900), so a forgotten relay never lingers
 *
 * Once bound it prints "ready PORT" and runs until SIGTERM/SIGINT or -t. Loopback only.
 *
 * Design, and why:
 *  - Answers go back to the right client without touching DNS IDs: every client address
 *    (addr, port) gets an upstream socket of its own, connected to the server, as a NAT would.
 *    A client's IDs are unique on its own socket (the client sees to that: 4,096 in flight fit in
 *    65,536 IDs), so two clients, or dnsperf's several sockets, can never collide at the server;
 *    mapping by (client, ID) on one upstream socket could, and would need an ID rewrite.
 *  - A fixed delay keeps arrival order, so each direction is a FIFO ring whose head is always the
 *    next datagram due: a sorted queue for free, O(1) per datagram, bounded memory (a full ring
 *    drops and counts, like a router's queue). A timerfd armed at the head's due time (ns, not
 *    epoll's ms) wakes the loop.
 *  - Loss is decided at arrival, one PRNG draw per datagram per direction: with the same sequence
 *    of datagrams the same ones are lost, whatever the timing of the other direction.
 *  - recvmmsg/sendmmsg in batches of 64 and big socket buffers: the relay must not be the
 *    bottleneck or add losses of its own at 50,000+ datagrams/s.
 *  - It counts repeated questions (same name, type and class) from clients: a client that
 *    retransmits shows up there, whatever it does with its IDs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXPKT 1500
#define BATCH 64
#define MAXCLIENTS 512
#define DRAIN_BATCHES 16 /* per readable socket per wake-up, so one busy socket cannot starve */
#define SEEN_BITS 18     /* 262,144 slots: a /16's questions at < 1/4 load */
#define EV_LISTEN 0
#define EV_TIMER 1
#define EV_CLIENT 2 /* + client index */

struct pkt {
    uint64_t due;
    uint16_t client;
    uint16_t len;
    unsigned char data[MAXPKT];
};

struct ring {
    struct pkt *slot;
    uint32_t mask, head, tail; /* head: next to send; tail: next free; head == tail: empty */
    uint64_t lost, full, max_queued;
    uint64_t rng;
    double loss;
    uint64_t delay;
};

struct client {
    struct sockaddr_in addr;
    int fd;
};

static struct client clients[MAXCLIENTS];
static int nclients, listen_fd, timer_fd, epfd;
static struct sockaddr_in upstream;
static struct ring up, down;
static uint64_t rx_client, tx_upstream, rx_upstream, tx_client, send_errors, oversize, no_client;
static uint64_t repeats, distinct, seen_saturated;
static uint64_t *seen;
static volatile sig_atomic_t stop_flag, dump_flag;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int lose(struct ring *r) {
    if (r->loss <= 0) return 0;
    return (double)(splitmix(&r->rng) >> 11) * 0x1.0p-53 < r->loss;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void parse_addr(const char *s, struct sockaddr_in *sa) {
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host) {
        fprintf(stderr, "relay: %s: want ADDR:PORT\n", s);
        exit(2);
    }
    memcpy(host, s, colon - s);
    host[colon - s] = 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1 || strncmp(host, "127.", 4) != 0) {
        fprintf(stderr, "relay: %s: a 127.x loopback address is required\n", s);
        exit(2);
    }
}

static void big_buffers(int fd) {
    int sz = 8 << 20;
    /* FORCE (root) past net.core.*mem_max; the plain call is the fallback */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz))
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

static void watch(int fd, uint64_t tag) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) die("epoll_ctl");
}

static int client_of(const struct sockaddr_in *sa) {
    static int last;
    if (last < nclients && clients[last].addr.sin_port == sa->sin_port &&
        clients[last].addr.sin_addr.s_addr == sa->sin_addr.s_addr)
        return last;
    for (int i = 0; i < nclients; i++)
        if (clients[i].addr.sin_port == sa->sin_port &&
            clients[i].addr.sin_addr.s_addr == sa->sin_addr.s_addr)
            return last = i;
    if (nclients == MAXCLIENTS) return -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    big_buffers(fd);
    if (connect(fd, (struct sockaddr *)&upstream, sizeof upstream)) die("connect upstream");
    clients[nclients].addr = *sa;
    clients[nclients].fd = fd;
    watch(fd, EV_CLIENT + (uint64_t)nclients);
    return last = nclients++;
}

/* The question (name, type, class) as a 64-bit FNV-1a hash, remembered in an open-addressed set. */
static void note_question(const unsigned char *d, unsigned len) {
    if (len < 17 || seen_saturated) return;
    unsigned i = 12;
    while (i < len && d[i] != 0) {
        if (d[i] & 0xc0) return; /* no compression in a question we send */
        i += 1u + d[i];
    }
    if (i + 5 > len) return;
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned k = 12; k < i + 5; k++) {
        unsigned char c = d[k];
        if (c >= 'A' && c <= 'Z') c += 32;
        h = (h ^ c) * 0x100000001b3ull;
    }
    if (h == 0) h = 1;
    uint64_t mask = (1u << SEEN_BITS) - 1;
    for (uint64_t j = h & mask;; j = (j + 1) & mask) {
        if (seen[j] == h) {
            repeats++;
            return;
        }
        if (seen[j] == 0) {
            seen[j] = h;
            if (++distinct > (mask + 1) * 3 / 4) seen_saturated = 1;
            return;
        }
    }
}

static void enqueue(struct ring *r, int client, const unsigned char *d, unsigned len, uint64_t t) {
    if (lose(r)) {
        r->lost++;
        return;
    }
    if (r->tail - r->head > r->mask) {
        r->full++;
        return;
    }
    struct pkt *p = &r->slot[r->tail & r->mask];
    p->due = t + r->delay;
    p->client = (uint16_t)client;
    p->len = (uint16_t)len;
    memcpy(p->data, d, len);
    r->tail++;
    if (r->tail - r->head > r->max_queued) r->max_queued = r->tail - r->head;
}

static unsigned char rbuf[BATCH][MAXPKT];
static struct mmsghdr rmsg[BATCH];
static struct iovec riov[BATCH];
static struct sockaddr_in rname[BATCH];

static int receive(int fd, int want_names) {
    for (int i = 0; i < BATCH; i++) {
        riov[i].iov_base = rbuf[i];
        riov[i].iov_len = MAXPKT;
        memset(&rmsg[i].msg_hdr, 0, sizeof rmsg[i].msg_hdr);
        rmsg[i].msg_hdr.msg_iov = &riov[i];
        rmsg[i].msg_hdr.msg_iovlen = 1;
        if (want_names) {
            rmsg[i].msg_hdr.msg_name = &rname[i];
            rmsg[i].msg_hdr.msg_namelen = sizeof rname[i];
        }
    }
    int n = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED) die("recvmmsg");
    return n < 0 ? 0 : n;
}

static void from_clients(void) {
    for (int b = 0; b < DRAIN_BATCHES; b++) {
        int n = receive(listen_fd, 1);
        uint64_t t = now_ns();
        for (int i = 0; i < n; i++) {
            rx_client++;
            if (rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
                oversize++;
                continue;
            }
            note_question(rbuf[i], rmsg[i].msg_len);
            int c = client_of(&rname[i]);
            if (c < 0) {
                no_client++;
                continue;
            }
            enqueue(&up, c, rbuf[i], rmsg[i].msg_len, t);
        }
        if (n < BATCH) return;
    }
}

static void from_upstream(int c) {
    for (int b = 0; b < DRAIN_BATCHES; b++) {
        int n = receive(clients[c].fd, 0);
        uint64_t t = now_ns();
        for (int i = 0; i < n; i++) {
            rx_upstream++;
            if (rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
                oversize++;
                continue;
            }
            enqueue(&down, c, rbuf[i], rmsg[i].msg_len, t);
        }
        if (n < BATCH) return;
    }
}

static struct mmsghdr smsg[BATCH];
static struct iovec siov[BATCH];

/* Send what is due from one ring: runs of one client upstream, any clients downstream. */
static void flush(struct ring *r, int downstream, uint64_t t) {
    while (r->head != r->tail && r->slot[r->head & r->mask].due <= t) {
        int n = 0, first = r->slot[r->head & r->mask].client;
        while (n < BATCH && r->head + n != r->tail) {
            struct pkt *p = &r->slot[(r->head + n) & r->mask];
            if (p->due > t || (!downstream && p->client != first)) break;
            siov[n].iov_base = p->data;
            siov[n].iov_len = p->len;
            memset(&smsg[n].msg_hdr, 0, sizeof smsg[n].msg_hdr);
            smsg[n].msg_hdr.msg_iov = &siov[n];
            smsg[n].msg_hdr.msg_iovlen = 1;
            if (downstream) {
                smsg[n].msg_hdr.msg_name = &clients[p->client].addr;
                smsg[n].msg_hdr.msg_namelen = sizeof clients[p->client].addr;
            }
            n++;
        }
        int fd = downstream ? listen_fd : clients[first].fd;
        int sent = 0;
        while (sent < n) {
            int k = sendmmsg(fd, smsg + sent, n - sent, 0);
            if (k <= 0) {
                /* a full send buffer or a refused port: that datagram is gone, as on a network */
                send_errors++;
                sent++;
                continue;
            }
            sent += k;
        }
        if (downstream) tx_client += n; else tx_upstream += n;
        r->head += n;
    }
}

static void arm_timer(void) {
    static uint64_t armed;
    uint64_t due = 0;
    if (up.head != up.tail) due = up.slot[up.head & up.mask].due;
    if (down.head != down.tail) {
        uint64_t d = down.slot[down.head & down.mask].due;
        if (!due || d < due) due = d;
    }
    if (due == armed) return;
    struct itimerspec its = {0};
    its.it_value.tv_sec = due / 1000000000u;
    its.it_value.tv_nsec = due % 1000000000u;
    if (!due) its.it_value.tv_nsec = 0; /* disarm */
    if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL)) die("timerfd_settime");
    armed = due;
}

static void dump(const char *path, double secs) {
    FILE *f = path ? fopen(path, "w") : stderr;
    if (!f) die(path);
    fprintf(f,
            "{\"rx_client\": %llu, \"tx_upstream\": %llu, \"rx_upstream\": %llu, "
            "\"tx_client\": %llu, \"lost_up\": %llu, \"lost_down\": %llu, \"full_up\": %llu, "
            "\"full_down\": %llu, \"send_errors\": %llu, \"oversize\": %llu, \"no_client\": %llu, "
            "\"repeats\": %llu, \"distinct\": %llu, \"repeats_saturated\": %s, \"clients\": %d, "
            "\"max_queued_up\": %llu, \"max_queued_down\": %llu, \"delay_up_ms\": %.3f, "
            "\"delay_down_ms\": %.3f, \"loss_up\": %g, \"loss_down\": %g, \"secs\": %.3f}\n",
            (unsigned long long)rx_client, (unsigned long long)tx_upstream,
            (unsigned long long)rx_upstream, (unsigned long long)tx_client,
            (unsigned long long)up.lost, (unsigned long long)down.lost,
            (unsigned long long)up.full, (unsigned long long)down.full,
            (unsigned long long)send_errors, (unsigned long long)oversize,
            (unsigned long long)no_client, (unsigned long long)repeats,
            (unsigned long long)distinct, seen_saturated ? "true" : "false", nclients,
            (unsigned long long)up.max_queued, (unsigned long long)down.max_queued,
            up.delay / 1e6, down.delay / 1e6, up.loss, down.loss, secs);
    if (path) fclose(f); else fflush(f);
}

static void on_stop(int sig) { (void)sig; stop_flag = 1; }
static void on_dump(int sig) { (void)sig; dump_flag = 1; }

static void setup_ring(struct ring *r, unsigned cap, double delay_ms, double loss, uint64_t seed) {
    r->slot = malloc((size_t)cap * sizeof *r->slot); /* pages are touched only as the ring fills */
    if (!r->slot) die("malloc");
    r->mask = cap - 1;
    r->delay = (uint64_t)(delay_ms * 1e6);
    r->loss = loss;
    r->rng = seed;
}

int main(int argc, char **argv) {
    const char *listen_at = "127.0.0.1:0", *up_at = NULL, *out = NULL;
    double d_up = 0, d_down = -1, p_up = 0, p_down = -1, limit = 900;
    unsigned long long seed = 1;
    unsigned cap = 16384;
    int c;
    while ((c = getopt(argc, argv, "l:u:d:D:p:P:s:q:o:t:")) != -1) {
        switch (c) {
        case 'l': listen_at = optarg; break;
        case 'u': up_at = optarg; break;
        case 'd': d_up = atof(optarg); break;
        case 'D': d_down = atof(optarg); break;
        case 'p': p_up = atof(optarg); break;
        case 'P': p_down = atof(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'q': cap = (unsigned)atoi(optarg); break;
        case 'o': out = optarg; break;
        case 't': limit = atof(optarg); break;
        default:
            fprintf(stderr, "usage: %s -u ADDR:PORT [-l ADDR:PORT] [-d MS] [-D MS] [-p P] [-P P] "
                            "[-s SEED] [-q N] [-o FILE] [-t SECS]\n", argv[0]);
            return 2;
        }
    }
    if (d_down < 0) d_down = d_up;
    if (p_down < 0) p_down = p_up;
    if (!up_at || cap < 64 || (cap & (cap - 1)) || cap > (1u << 20) || d_up < 0 || d_up > 10000 ||
        d_down > 10000 || p_up < 0 || p_up > 1 || p_down > 1 || limit <= 0) {
        fprintf(stderr, "relay: need -u; -q a power of 2 in 64..1048576; delays 0..10000 ms; "
                        "losses 0..1; -t > 0\n");
        return 2;
    }
    struct sockaddr_in la;
    parse_addr(listen_at, &la);
    parse_addr(up_at, &upstream);
    /* two generators from one seed: the directions' draws stay independent of each other */
    setup_ring(&up, cap, d_up, p_up, seed * 2 + 1);
    setup_ring(&down, cap, d_down, p_down, seed * 2 + 2);
    seen = calloc((size_t)1 << SEEN_BITS, sizeof *seen);
    if (!seen) die("calloc");

    struct sigaction sa = {0};
    sa.sa_handler = on_stop; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_dump;
    sigaction(SIGUSR1, &sa, NULL);

    epfd = epoll_create1(0);
    listen_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (epfd < 0 || listen_fd < 0) die("socket");
    big_buffers(listen_fd);
    if (bind(listen_fd, (struct sockaddr *)&la, sizeof la)) die("bind");
    socklen_t sl = sizeof la;
    getsockname(listen_fd, (struct sockaddr *)&la, &sl);
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (timer_fd < 0) die("timerfd_create");
    watch(listen_fd, EV_LISTEN);
    watch(timer_fd, EV_TIMER);
    printf("ready %d\n", ntohs(la.sin_port));
    fflush(stdout);

    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(limit * 1e9);
    struct epoll_event evs[64];
    while (!stop_flag) {
        /* the timerfd carries the precise wake-up; the 100 ms cap only bounds the -t check */
        int n = epoll_wait(epfd, evs, 64, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == EV_LISTEN) {
                from_clients();
            } else if (tag == EV_TIMER) {
                uint64_t ticks;
                if (read(timer_fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) die("read timerfd");
            } else {
                from_upstream((int)(tag - EV_CLIENT));
            }
        }
        uint64_t t = now_ns();
        flush(&up, 0, t);
        flush(&down, 1, t);
        arm_timer();
        if (dump_flag) {
            dump_flag = 0;
            dump(out, (t - t0) / 1e9);
        }
        if (t >= end) break;
    }
    dump(out, (now_ns() - t0) / 1e9);
    return 0;
}
