/* TCP_INFO, the inet control messages on UDP receive (IP_PKTINFO,
 * IP_RECVTTL, IP_RECVTOS, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT,
 * IPV6_RECVTCLASS, SO_TIMESTAMP, SO_TIMESTAMPNS), control-buffer
 * truncation, and multicast on lo (memberships, IP_MULTICAST_*, delivery
 * with and without IP_MULTICAST_ALL), compared with the host. Only what is
 * deterministic is printed: no ports, no times (a timestamp is checked to
 * lie within a minute of gettimeofday). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static int seti(int fd, int level, int name, int v) {
    return setsockopt(fd, level, name, &v, sizeof v);
}

static int geti(int fd, int level, int name) {
    int v = -7;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) < 0)
        return -1000 - errno;
    return v;
}

/* struct tcp_info as the kernel has it (glibc's stops at
 * tcpi_total_retrans): read by offset. */
struct ti_buf {
    unsigned char b[512];
};
static unsigned long long ti_u64(const struct ti_buf *t, int off) {
    unsigned long long v;
    memcpy(&v, t->b + off, 8);
    return v;
}
static unsigned ti_u32(const struct ti_buf *t, int off) {
    unsigned v;
    memcpy(&v, t->b + off, 4);
    return v;
}
#define TI_SND_MSS 16
#define TI_ADVMSS 84
#define TI_BYTES_RECEIVED 128
#define TI_BYTES_SENT 200

static unsigned tcp_state(int fd) {
    struct ti_buf ti;
    socklen_t l = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
        return 1000 + errno;
    return ti.b[0];
}

/* Waits (up to 5 s) for a TCP socket to reach `want` (FINs travel
 * asynchronously on the host). */
static unsigned wait_state(int fd, unsigned want) {
    unsigned s = 0;
    for (int i = 0; i < 500; i++) {
        s = tcp_state(fd);
        if (s == want)
            break;
        usleep(10000);
    }
    return s;
}

static void tcp_info_checks(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    getsockname(l, (struct sockaddr *)&a, &al);
    printf("fresh socket state %u\n", tcp_state(l));
    listen(l, 4);
    printf("listener state %u\n", tcp_state(l));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    show("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    int s = accept(l, NULL, NULL);
    printf("client state %u server state %u\n", tcp_state(c), tcp_state(s));
    char buf[5000];
    memset(buf, 'x', sizeof buf);
    show("send", send(c, buf, 3000, 0));
    int got = 0;
    while (got < 3000) {
        int n = recv(s, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        got += n;
    }
    struct ti_buf ti;
    socklen_t tl = sizeof ti;
    memset(&ti, 0, sizeof ti);
    show("getsockopt TCP_INFO", getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tl));
    printf("length covers bytes_sent %d\n", tl >= TI_BYTES_SENT + 8);
    printf("server bytes_received %llu\n", ti_u64(&ti, TI_BYTES_RECEIVED));
    tl = sizeof ti;
    getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl);
    printf("client bytes_sent %llu bytes_received %llu\n", ti_u64(&ti, TI_BYTES_SENT),
           ti_u64(&ti, TI_BYTES_RECEIVED));
    printf("client mss nonzero %d\n", ti_u32(&ti, TI_SND_MSS) > 0 && ti_u32(&ti, TI_ADVMSS) > 0);
    /* A short buffer gets a prefix: the state byte. */
    unsigned char b1[1] = {0};
    tl = 1;
    show("getsockopt TCP_INFO len 1", getsockopt(c, IPPROTO_TCP, TCP_INFO, b1, &tl));
    printf("len %u state %u\n", tl, b1[0]);
    tl = (socklen_t)-1;
    show("getsockopt TCP_INFO len -1", getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl));
    tl = sizeof ti;
    show("getsockopt TCP_INFO bad pointer", getsockopt(c, IPPROTO_TCP, TCP_INFO, (void *)8, &tl));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    tl = sizeof ti;
    show("TCP_INFO on udp", getsockopt(u, IPPROTO_TCP, TCP_INFO, &ti, &tl));
    close(u);
    shutdown(c, SHUT_WR);
    printf("after shutdown: client %u server %u\n", wait_state(c, 5), wait_state(s, 8));
    close(s);
    printf("after server close: client %u\n", wait_state(c, 7));
    close(c);
    close(l);
}

/* Prints every control message of a received datagram. */
static void dump_cmsgs(const char *tag, struct msghdr *m) {
    printf("%s: flags%s%s controllen %zu\n", tag, m->msg_flags & MSG_CTRUNC ? " CTRUNC" : "",
           m->msg_flags & MSG_TRUNC ? " TRUNC" : "", (size_t)m->msg_controllen);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        printf("  cmsg level %d type %d len %zu:", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len);
        unsigned char *d = CMSG_DATA(c);
        size_t n = c->cmsg_len - CMSG_LEN(0);
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && n >= sizeof(struct in_pktinfo)) {
            struct in_pktinfo p;
            memcpy(&p, d, sizeof p);
            char x[32], y[32];
            inet_ntop(AF_INET, &p.ipi_spec_dst, x, sizeof x);
            inet_ntop(AF_INET, &p.ipi_addr, y, sizeof y);
            printf(" ifindex %d spec_dst %s addr %s", p.ipi_ifindex, x, y);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   n >= sizeof(struct in6_pktinfo)) {
            struct in6_pktinfo p;
            memcpy(&p, d, sizeof p);
            char x[64];
            inet_ntop(AF_INET6, &p.ipi6_addr, x, sizeof x);
            printf(" addr %s ifindex %d", x, p.ipi6_ifindex);
        } else if (c->cmsg_level == SOL_SOCKET &&
                   (c->cmsg_type == SO_TIMESTAMP || c->cmsg_type == SO_TIMESTAMPNS) && n == 16) {
            long long t[2];
            memcpy(t, d, 16);
            struct timeval now;
            gettimeofday(&now, NULL);
            long long lim = c->cmsg_type == SO_TIMESTAMP ? 1000000 : 1000000000;
            printf(" within a minute %d, subsecond in range %d", llabs(now.tv_sec - t[0]) < 60,
                   t[1] >= 0 && t[1] < lim);
        } else if (c->cmsg_level == SOL_SOCKET) {
            printf(" (%zu bytes)", n);
        } else if (n == 1) {
            printf(" %u", d[0]);
        } else if (n == 4) {
            int v;
            memcpy(&v, d, 4);
            printf(" %d", v);
        } else {
            printf(" (%zu bytes)", n);
        }
        printf("\n");
    }
}

static void recv_with(const char *tag, int fd, size_t controllen) {
    char data[64];
    union {
        char buf[512];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {data, sizeof data};
    struct sockaddr_storage from;
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
                       .msg_iovlen = 1, .msg_control = controllen ? ctl.buf : NULL,
                       .msg_controllen = controllen};
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, 5000);
    ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
    if (n < 0) {
        printf("%s: recvmsg -1 %s\n", tag, strerrorname_np(errno));
        return;
    }
    printf("%s: %zd bytes '%.*s'\n", tag, n, (int)n, data);
    dump_cmsgs(tag, &m);
}

static void udp4_cmsgs(void) {
    int r = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(r, (struct sockaddr *)&a, sizeof a);
    getsockname(r, (struct sockaddr *)&a, &al);
    show("IP_PKTINFO", seti(r, IPPROTO_IP, IP_PKTINFO, 1));
    show("IP_RECVTTL", seti(r, IPPROTO_IP, IP_RECVTTL, 1));
    show("IP_RECVTOS", seti(r, IPPROTO_IP, IP_RECVTOS, 1));
    show("SO_TIMESTAMP", seti(r, SOL_SOCKET, SO_TIMESTAMP, 1));
    printf("get IP_PKTINFO %d IP_RECVTTL %d IP_RECVTOS %d SO_TIMESTAMP %d SO_TIMESTAMPNS %d\n",
           geti(r, IPPROTO_IP, IP_PKTINFO), geti(r, IPPROTO_IP, IP_RECVTTL),
           geti(r, IPPROTO_IP, IP_RECVTOS), geti(r, SOL_SOCKET, SO_TIMESTAMP),
           geti(r, SOL_SOCKET, SO_TIMESTAMPNS));
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    show("IP_TTL 33", seti(s, IPPROTO_IP, IP_TTL, 33));
    show("IP_TOS 0x10", seti(s, IPPROTO_IP, IP_TOS, 0x10));
    for (int i = 0; i < 5; i++)
        sendto(s, "hello", 5, 0, (struct sockaddr *)&a, sizeof a);
    recv_with("v4 full", r, 512);
    recv_with("v4 room 20", r, 20);
    recv_with("v4 room 8", r, 8);
    recv_with("v4 no control", r, 0);
    show("SO_TIMESTAMPNS", seti(r, SOL_SOCKET, SO_TIMESTAMPNS, 1));
    show("IP_RECVTTL off", seti(r, IPPROTO_IP, IP_RECVTTL, 0));
    printf("get SO_TIMESTAMP %d SO_TIMESTAMPNS %d\n", geti(r, SOL_SOCKET, SO_TIMESTAMP),
           geti(r, SOL_SOCKET, SO_TIMESTAMPNS));
    recv_with("v4 ns", r, 512);
    /* A one-byte option value and an empty one, as Linux reads them. */
    unsigned char one = 1;
    show("IP_RECVTOS 1 byte", setsockopt(r, IPPROTO_IP, IP_RECVTOS, &one, 1));
    show("IP_PKTINFO len 0", setsockopt(r, IPPROTO_IP, IP_PKTINFO, &one, 0));
    printf("get IP_PKTINFO %d\n", geti(r, IPPROTO_IP, IP_PKTINFO));
    show("IP_PKTINFO bad pointer", setsockopt(r, IPPROTO_IP, IP_PKTINFO, (void *)8, 4));
    close(r);
    close(s);
}

static void udp6_cmsgs(void) {
    int r = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
    socklen_t al = sizeof a;
    bind(r, (struct sockaddr *)&a, sizeof a);
    getsockname(r, (struct sockaddr *)&a, &al);
    a.sin6_addr = in6addr_loopback;
    show("IPV6_RECVPKTINFO", seti(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1));
    show("IPV6_RECVHOPLIMIT", seti(r, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1));
    show("IPV6_RECVTCLASS", seti(r, IPPROTO_IPV6, IPV6_RECVTCLASS, 1));
    show("IPV6_RECVPKTINFO short", setsockopt(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, "", 1));
    int s = socket(AF_INET6, SOCK_DGRAM, 0);
    show("IPV6_UNICAST_HOPS 7", seti(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 7));
    show("IPV6_TCLASS 0x20", seti(s, IPPROTO_IPV6, IPV6_TCLASS, 0x20));
    show("IPV6_TCLASS 256", seti(s, IPPROTO_IPV6, IPV6_TCLASS, 256));
    printf("get IPV6_TCLASS %d\n", geti(s, IPPROTO_IPV6, IPV6_TCLASS));
    sendto(s, "six", 3, 0, (struct sockaddr *)&a, sizeof a);
    recv_with("v6", r, 512);
    /* IPv4 to the dual-stack socket, with IP_PKTINFO as well. */
    show("IP_PKTINFO on v6", seti(r, IPPROTO_IP, IP_PKTINFO, 1));
    int s4 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = a.sin6_port,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sendto(s4, "four", 4, 0, (struct sockaddr *)&a4, sizeof a4);
    recv_with("v4 on v6", r, 512);
    close(s4);
    close(r);
    close(s);
}

static void join4(int fd, const char *group, const char *ifaddr, int len) {
    struct ip_mreq m;
    inet_pton(AF_INET, group, &m.imr_multiaddr);
    inet_pton(AF_INET, ifaddr, &m.imr_interface);
    char what[96];
    snprintf(what, sizeof what, "join %s on %s len %d", group, ifaddr, len);
    show(what, setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, len));
}

static void multicast4(void) {
    int r = socket(AF_INET, SOCK_DGRAM, 0);
    seti(r, SOL_SOCKET, SO_REUSEADDR, 1);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof a;
    bind(r, (struct sockaddr *)&a, sizeof a);
    getsockname(r, (struct sockaddr *)&a, &al);
    printf("defaults: ttl %d loop %d all %d\n", geti(r, IPPROTO_IP, IP_MULTICAST_TTL),
           geti(r, IPPROTO_IP, IP_MULTICAST_LOOP), geti(r, IPPROTO_IP, IP_MULTICAST_ALL));
    join4(r, "224.0.0.251", "127.0.0.1", sizeof(struct ip_mreq));
    join4(r, "224.0.0.251", "127.0.0.1", sizeof(struct ip_mreq));
    join4(r, "127.0.0.1", "127.0.0.1", sizeof(struct ip_mreq));
    join4(r, "224.0.0.252", "127.0.0.1", 4);
    join4(r, "224.0.0.252", "10.99.99.99", sizeof(struct ip_mreq));
    struct ip_mreqn mn = {.imr_ifindex = 1};
    inet_pton(AF_INET, "224.0.0.253", &mn.imr_multiaddr);
    show("join mreqn ifindex 1", setsockopt(r, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mn, sizeof mn));
    mn.imr_ifindex = 999;
    show("join mreqn ifindex 999", setsockopt(r, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mn, sizeof mn));
    show("join bad pointer", setsockopt(r, IPPROTO_IP, IP_ADD_MEMBERSHIP, (void *)8, 8));
    struct ip_mreq d;
    inet_pton(AF_INET, "224.0.0.254", &d.imr_multiaddr);
    inet_pton(AF_INET, "127.0.0.1", &d.imr_interface);
    show("drop not joined", setsockopt(r, IPPROTO_IP, IP_DROP_MEMBERSHIP, &d, sizeof d));
    /* The membership limit (igmp_max_memberships, 20). */
    int lim = socket(AF_INET, SOCK_DGRAM, 0);
    int ok = 0, err = 0;
    for (int i = 1; i <= 21; i++) {
        char g[32];
        snprintf(g, sizeof g, "239.1.1.%d", i);
        struct ip_mreq m;
        inet_pton(AF_INET, g, &m.imr_multiaddr);
        inet_pton(AF_INET, "127.0.0.1", &m.imr_interface);
        if (setsockopt(lim, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0)
            ok++;
        else
            err = errno;
    }
    printf("memberships: %d joined, then %s\n", ok, err ? strerrorname_np(err) : "none");
    close(lim);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    join4(t, "224.0.0.251", "127.0.0.1", sizeof(struct ip_mreq));
    close(t);

    /* A second socket on the port that did not join (IP_MULTICAST_ALL
     * lets it take the group's datagrams) and a third that opted out. */
    int r2 = socket(AF_INET, SOCK_DGRAM, 0);
    seti(r2, SOL_SOCKET, SO_REUSEADDR, 1);
    bind(r2, (struct sockaddr *)&a, sizeof a);
    int r3 = socket(AF_INET, SOCK_DGRAM, 0);
    seti(r3, SOL_SOCKET, SO_REUSEADDR, 1);
    bind(r3, (struct sockaddr *)&a, sizeof a);
    show("IP_MULTICAST_ALL 0", seti(r3, IPPROTO_IP, IP_MULTICAST_ALL, 0));
    seti(r, IPPROTO_IP, IP_PKTINFO, 1);
    seti(r, IPPROTO_IP, IP_RECVTTL, 1);

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct in_addr lo = {htonl(INADDR_LOOPBACK)}, bad;
    inet_pton(AF_INET, "10.99.99.99", &bad);
    show("IP_MULTICAST_IF 10.99.99.99", setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &bad, sizeof bad));
    show("IP_MULTICAST_IF 127.0.0.1", setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo));
    struct in_addr got;
    socklen_t gl = sizeof got;
    getsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &got, &gl);
    printf("get IP_MULTICAST_IF %s len %u\n", inet_ntoa(got), gl);
    show("IP_MULTICAST_TTL 256", seti(s, IPPROTO_IP, IP_MULTICAST_TTL, 256));
    show("IP_MULTICAST_TTL 3", seti(s, IPPROTO_IP, IP_MULTICAST_TTL, 3));
    unsigned char zero = 0;
    show("IP_MULTICAST_LOOP 1 byte", setsockopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, 1));
    show("IP_MULTICAST_LOOP len 0", setsockopt(s, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, 0));
    printf("get ttl %d loop %d\n", geti(s, IPPROTO_IP, IP_MULTICAST_TTL),
           geti(s, IPPROTO_IP, IP_MULTICAST_LOOP));
    struct sockaddr_in g = {.sin_family = AF_INET, .sin_port = a.sin_port};
    inet_pton(AF_INET, "224.0.0.251", &g.sin_addr);
    /* Out of lo: delivered even without IP_MULTICAST_LOOP. */
    show("send to group", sendto(s, "mc", 2, 0, (struct sockaddr *)&g, sizeof g));
    recv_with("joined", r, 512);
    recv_with("not joined, all", r2, 512);
    char x[8];
    show("not joined, not all", recv(r3, x, sizeof x, MSG_DONTWAIT));
    /* A group nobody joined: dropped. */
    inet_pton(AF_INET, "224.0.0.99", &g.sin_addr);
    show("send to unjoined group", sendto(s, "mc", 2, 0, (struct sockaddr *)&g, sizeof g));
    usleep(100000);
    show("unjoined group", recv(r2, x, sizeof x, MSG_DONTWAIT));
    /* After leaving: dropped. */
    struct ip_mreq m;
    inet_pton(AF_INET, "224.0.0.251", &m.imr_multiaddr);
    m.imr_interface = lo;
    show("drop 224.0.0.251", setsockopt(r, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m));
    inet_pton(AF_INET, "224.0.0.251", &g.sin_addr);
    sendto(s, "mc", 2, 0, (struct sockaddr *)&g, sizeof g);
    usleep(100000);
    show("after drop", recv(r, x, sizeof x, MSG_DONTWAIT));
    close(s);
    close(r);
    close(r2);
    close(r3);
}

static void multicast6(void) {
    int r = socket(AF_INET6, SOCK_DGRAM, 0);
    struct ipv6_mreq m = {.ipv6mr_interface = 1};
    inet_pton(AF_INET6, "ff02::fb", &m.ipv6mr_multiaddr);
    show("join6 ff02::fb on 1", setsockopt(r, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m));
    show("join6 again", setsockopt(r, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m));
    show("join6 short", setsockopt(r, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, 16));
    m.ipv6mr_interface = 999;
    show("join6 on 999", setsockopt(r, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m));
    m.ipv6mr_interface = 1;
    show("leave6", setsockopt(r, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m));
    show("leave6 again", setsockopt(r, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &m, sizeof m));
    inet_pton(AF_INET6, "::1", &m.ipv6mr_multiaddr);
    show("join6 unicast", setsockopt(r, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m));
    printf("defaults6: hops %d loop %d if %d\n", geti(r, IPPROTO_IPV6, IPV6_MULTICAST_HOPS),
           geti(r, IPPROTO_IPV6, IPV6_MULTICAST_LOOP), geti(r, IPPROTO_IPV6, IPV6_MULTICAST_IF));
    show("IPV6_MULTICAST_LOOP 2", seti(r, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 2));
    show("IPV6_MULTICAST_HOPS 300", seti(r, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 300));
    show("IPV6_MULTICAST_IF 999", seti(r, IPPROTO_IPV6, IPV6_MULTICAST_IF, 999));
    show("IPV6_MULTICAST_IF 1", seti(r, IPPROTO_IPV6, IPV6_MULTICAST_IF, 1));
    /* lo is not multicast-capable for IPv6. */
    struct sockaddr_in6 g = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
    inet_pton(AF_INET6, "ff02::fb", &g.sin6_addr);
    show("send6 via lo", sendto(r, "x", 1, 0, (struct sockaddr *)&g, sizeof g));
    show("IPV6_MULTICAST_HOPS on v4", seti(socket(AF_INET, SOCK_DGRAM, 0), IPPROTO_IPV6,
                                           IPV6_MULTICAST_HOPS, 1));
    close(r);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    tcp_info_checks();
    udp4_cmsgs();
    udp6_cmsgs();
    multicast4();
    multicast6();
    printf("result: OK\n");
    return 0;
}
