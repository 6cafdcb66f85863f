/* Raw ICMP and ICMPv6 sockets over lo, compared with the host (run as
 * root): protocol checks, ICMP_FILTER / ICMP6_FILTER, an echo request
 * answered by the machine (the IPv4 header in front, the ICMPv6 checksum
 * filled in), a request seen by a raw socket bound to its destination, no
 * answer to a bad checksum, and EPERM once CAP_NET_RAW is gone. Only
 * deterministic fields are printed (no IP ids, no checksums' values). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ICMP_FILTER
#define ICMP_FILTER 1
#endif

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

static unsigned short sum16(const unsigned char *b, size_t n) {
    unsigned long s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (b[i] << 8) | b[i + 1];
    if (n & 1)
        s += b[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (unsigned short)~s;
}

static const char payload[] = "ruml raw icmp";

static size_t echo(unsigned char *m, int type, int id, int seq, int good_sum) {
    memset(m, 0, 8);
    m[0] = type;
    m[4] = id >> 8;
    m[5] = id & 0xff;
    m[6] = seq >> 8;
    m[7] = seq & 0xff;
    memcpy(m + 8, payload, sizeof payload);
    size_t n = 8 + sizeof payload;
    unsigned short s = sum16(m, n);
    if (!good_sum)
        s ^= 0x5555;
    m[2] = s >> 8;
    m[3] = s & 0xff;
    return n;
}

/* Receives one packet (within 2 s): prints what is deterministic. */
static void recv_one(const char *tag, int fd, int v6, int want_id) {
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) {
            printf("%s: nothing\n", tag);
            return;
        }
        unsigned char b[2048];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            printf("%s: -1 %s\n", tag, strerrorname_np(errno));
            return;
        }
        char a[64];
        unsigned char *icmp = b;
        size_t ilen = n;
        if (!v6) {
            int hl = (b[0] & 15) * 4;
            icmp = b + hl;
            ilen = n - hl;
            char s[32], d[32];
            inet_ntop(AF_INET, b + 12, s, sizeof s);
            inet_ntop(AF_INET, b + 16, d, sizeof d);
            int id = (icmp[4] << 8) | icmp[5];
            if (want_id >= 0 && id != want_id)
                continue; /* someone else's */
            inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, a, sizeof a);
            printf("%s: %zd bytes, version %d hl %d proto %d ttl %d %s -> %s, header sum ok %d, "
                   "from %s port %d\n",
                   tag, n, b[0] >> 4, hl, b[9], b[8], s, d, sum16(b, hl) == 0, a,
                   ntohs(((struct sockaddr_in *)&from)->sin_port));
            printf("%s: icmp type %d code %d id ok %d seq %d sum ok %d payload ok %d\n", tag,
                   icmp[0], icmp[1], id == want_id || want_id < 0, (icmp[6] << 8) | icmp[7],
                   sum16(icmp, ilen) == 0,
                   ilen == 8 + sizeof payload && !memcmp(icmp + 8, payload, sizeof payload));
        } else {
            int id = (icmp[4] << 8) | icmp[5];
            if (want_id >= 0 && id != want_id)
                continue;
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&from)->sin6_addr, a, sizeof a);
            printf("%s: %zd bytes from %s: icmp6 type %d code %d id ok %d seq %d sum set %d "
                   "payload ok %d\n",
                   tag, n, a, icmp[0], icmp[1], 1, (icmp[6] << 8) | icmp[7],
                   icmp[2] || icmp[3],
                   ilen == 8 + sizeof payload && !memcmp(icmp + 8, payload, sizeof payload));
        }
        return;
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int id = (getpid() & 0x7fff) | 0x100;
    show("raw protocol 0", socket(AF_INET, SOCK_RAW, 0));
    int r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    show("raw icmp", r >= 0 ? 0 : -1);
    uint32_t filt = ~(1u << ICMP_ECHOREPLY), got = 0;
    show("ICMP_FILTER", setsockopt(r, SOL_RAW, ICMP_FILTER, &filt, sizeof filt));
    socklen_t gl = 64;
    show("get ICMP_FILTER", getsockopt(r, SOL_RAW, ICMP_FILTER, &got, &gl));
    printf("filter back %d len %u\n", got == filt, gl);
    /* A fault zero-fills the filter (copy_from_user): on a socket of
     * its own. */
    int t = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    setsockopt(t, SOL_RAW, ICMP_FILTER, &filt, sizeof filt);
    show("ICMP_FILTER bad pointer", setsockopt(t, SOL_RAW, ICMP_FILTER, (void *)8, 4));
    gl = sizeof got;
    getsockopt(t, SOL_RAW, ICMP_FILTER, &got, &gl);
    printf("filter after fault %#x\n", got);
    close(t);
    show("SOL_RAW unknown", setsockopt(r, SOL_RAW, 77, &filt, sizeof filt));

    /* A raw socket bound to 127.0.0.3: it sees requests to that address. */
    int b3 = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    struct sockaddr_in a3 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.3", &a3.sin_addr);
    show("bind 127.0.0.3", bind(b3, (struct sockaddr *)&a3, sizeof a3));

    unsigned char m[256];
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    size_t n = echo(m, ICMP_ECHO, id, 1, 1);
    show("send echo", sendto(r, m, n, 0, (struct sockaddr *)&lo, sizeof lo));
    recv_one("reply", r, 0, id);
    n = echo(m, ICMP_ECHO, id, 2, 1);
    show("send to 127.0.0.3", sendto(r, m, n, 0, (struct sockaddr *)&a3, sizeof a3));
    recv_one("bound socket", b3, 0, id);
    recv_one("reply from 127.0.0.3", r, 0, id);
    n = echo(m, ICMP_ECHO, id, 3, 0);
    show("send bad checksum", sendto(r, m, n, 0, (struct sockaddr *)&lo, sizeof lo));
    usleep(200000);
    unsigned char x[512];
    show("no answer", recv(r, x, sizeof x, MSG_DONTWAIT));
    show("send no address", send(r, m, n, 0));
    close(b3);
    close(r);

    int r6 = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
    show("raw icmpv6", r6 >= 0 ? 0 : -1);
    struct icmp6_filter f6;
    ICMP6_FILTER_SETBLOCKALL(&f6);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f6);
    show("ICMP6_FILTER", setsockopt(r6, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, sizeof f6));
    show("ICMP_FILTER on v6", setsockopt(r6, SOL_RAW, ICMP_FILTER, &filt, sizeof filt));
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
    n = echo(m, ICMP6_ECHO_REQUEST, id, 7, 0);
    m[2] = m[3] = 0;
    show("send echo6", sendto(r6, m, n, 0, (struct sockaddr *)&lo6, sizeof lo6));
    recv_one("reply6", r6, 1, id);
    show("send6 2 bytes", sendto(r6, m, 2, 0, (struct sockaddr *)&lo6, sizeof lo6));
    close(r6);

    pid_t pid = fork();
    if (pid == 0) {
        if (setuid(65534) < 0)
            _exit(2);
        show("unprivileged raw", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
        show("unprivileged raw6", socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6));
        show("unprivileged raw 0", socket(AF_INET, SOCK_RAW, 0));
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("result: OK\n");
    return 0;
}
