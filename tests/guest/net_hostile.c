/* Hostile input to the network stack: malformed sockaddrs and lengths,
 * huge and bad iovecs, bad option pointers and lengths, garbage netlink
 * messages, a flood of connections nobody accepts, a flood of datagrams
 * nobody reads. Each call must give an errno (or be dropped), never
 * hang or take the kernel down; what Linux answers is checked.
 * The parts that change interfaces run only under ruml (uname -r says
 * so): natively, as root, they would change the host's lo. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

static int failures;

static void expect(const char *what, long r, int want_errno) {
    int ok = want_errno ? (r < 0 && errno == want_errno) : r >= 0;
    printf("%s %s: %ld %s\n", ok ? "ok" : "FAIL", what, r, r < 0 ? strerrorname_np(errno) : "");
    if (!ok) failures++;
}

static struct sockaddr_in lo4(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int port_of(int fd) {
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    return ntohs(a.sin_port);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_storage big;
    memset(&big, 0, sizeof big);
    big.ss_family = AF_INET;
    expect("bind len 129", bind(s, (struct sockaddr *)&big, 129), EINVAL);
    expect("bind len -1", bind(s, (struct sockaddr *)&big, -1), EINVAL);
    expect("bind unmapped", bind(s, (struct sockaddr *)bad, 16), EFAULT);
    expect("connect unmapped", connect(s, (struct sockaddr *)bad, 16), EFAULT);
    expect("setsockopt unmapped", setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, bad, 4), EFAULT);
    int v;
    expect("getsockopt len unmapped", getsockopt(s, SOL_SOCKET, SO_TYPE, &v, (socklen_t *)bad), EFAULT);
    socklen_t l = 4;
    expect("getsockopt val unmapped", getsockopt(s, SOL_SOCKET, SO_TYPE, bad, &l), EFAULT);
    expect("listen huge backlog", listen(s, 0x7fffffff), 0);

    /* A connection, then hostile iovecs on it. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = lo4(port_of(s));
    expect("connect", connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int srv = accept(s, NULL, NULL);
    struct iovec iov[1025];
    for (int i = 0; i < 1025; i++) iov[i] = (struct iovec){"x", 1};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 1025};
    expect("sendmsg 1025 iovecs", sendmsg(c, &m, 0), EMSGSIZE);
    struct iovec huge = {"abc", (size_t)1 << 40};
    m = (struct msghdr){.msg_iov = &huge, .msg_iovlen = 1};
    long r = sendmsg(c, &m, MSG_DONTWAIT);
    printf("%s sendmsg 1 TiB iovec: %s\n", r < 0 && errno == EFAULT ? "ok" : r > 0 ? "ok" : "FAIL",
           r < 0 ? strerrorname_np(errno) : "partial");
    struct iovec neg = {"abc", (size_t)-1};
    m = (struct msghdr){.msg_iov = &neg, .msg_iovlen = 1};
    expect("sendmsg iov_len -1", sendmsg(c, &m, 0), EINVAL);
    m = (struct msghdr){.msg_iov = (struct iovec *)bad, .msg_iovlen = 1};
    expect("sendmsg iov unmapped", sendmsg(c, &m, 0), EFAULT);
    expect("send 5 bytes", send(c, "hello", 5, 0), 0);
    char buf[16];
    struct iovec rhuge = {buf, (size_t)1 << 40};
    m = (struct msghdr){.msg_iov = &rhuge, .msg_iovlen = 1};
    /* 1 TiB of room but 5 bytes to read: only what exists is copied
     * (Linux may refuse the range itself: EFAULT). */
    r = recvmsg(srv, &m, 0);
    printf("%s recvmsg into a 1 TiB iovec\n", r == 5 || (r < 0 && errno == EFAULT) ? "ok" : "FAIL");
    if (r < 0) recv(srv, buf, sizeof buf, 0);
    expect("recv into unmapped", (send(c, "x", 1, 0), recv(srv, bad, 1, 0)), EFAULT);
    close(c);
    close(srv);

    /* UDP: oversized, a datagram flood nobody reads (dropped, not kept). */
    int u = socket(AF_INET, SOCK_DGRAM, 0), w = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = lo4(0);
    bind(u, (struct sockaddr *)&ua, sizeof ua);
    ua = lo4(port_of(u));
    static char dg[65536];
    expect("udp 65508 bytes", sendto(w, dg, 65508, 0, (struct sockaddr *)&ua, sizeof ua), EMSGSIZE);
    int sent = 0;
    for (int i = 0; i < 20000; i++)
        if (sendto(w, dg, 1400, 0, (struct sockaddr *)&ua, sizeof ua) == 1400) sent++;
    printf("%s udp flood: every send accepted\n", sent == 20000 ? "ok" : "FAIL");
    int got = 0;
    while (recv(u, dg, sizeof dg, MSG_DONTWAIT) > 0) got++;
    printf("%s udp flood: some dropped, some kept\n", got > 0 && got < 20000 ? "ok" : "FAIL");
    close(u);
    close(w);

    /* Connections nobody accepts: connectors wait or are refused, the
     * kernel keeps a bounded number; closing everything frees them. */
    int l1 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in la = lo4(0);
    bind(l1, (struct sockaddr *)&la, sizeof la);
    listen(l1, 1);
    la = lo4(port_of(l1));
    int fds[900], n = 0, errs = 0;
    for (int i = 0; i < 900; i++) {
        int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (f < 0) break;
        if (connect(f, (struct sockaddr *)&la, sizeof la) < 0 && errno != EINPROGRESS) errs++;
        fds[n++] = f;
    }
    printf("%s %d nonblocking connects to a backlog of 1 (%d refused)\n", n == 900 ? "ok" : "FAIL", n,
           errs);
    for (int i = 0; i < n; i++) close(fds[i]);
    close(l1);

    /* Netlink: garbage, truncated and oversized messages. */
    int nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    expect("netlink socket", nl, 0);
    expect("netlink proto 99", socket(AF_NETLINK, SOCK_RAW, 99), EPROTONOSUPPORT);
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    expect("netlink bind short", bind(nl, (struct sockaddr *)&k, 4), EINVAL);
    expect("netlink bind", bind(nl, (struct sockaddr *)&k, sizeof k), 0);
    char junk[256];
    for (int i = 0; i < (int)sizeof junk; i++) junk[i] = (char)(i * 37 + 11);
    expect("netlink junk", send(nl, junk, sizeof junk, 0), 0);
    struct nlmsghdr *h = (struct nlmsghdr *)junk;
    memset(junk, 0, sizeof junk);
    h->nlmsg_len = 0xffffffff;
    h->nlmsg_type = RTM_GETLINK;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    expect("netlink length past the end", send(nl, junk, 32, 0), 0);
    h->nlmsg_len = 17;
    h->nlmsg_type = RTM_NEWADDR;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    expect("netlink short RTM_NEWADDR", send(nl, junk, 20, 0), 0);
    int len = recv(nl, junk, sizeof junk, MSG_DONTWAIT);
    struct nlmsgerr *e = NLMSG_DATA(h);
    printf("%s short RTM_NEWADDR answered with an error\n",
           len >= (int)NLMSG_LENGTH(sizeof *e) && h->nlmsg_type == NLMSG_ERROR && e->error < 0 ? "ok"
                                                                                          : "FAIL");
    /* Adding addresses is bounded. */
    struct utsname un;
    uname(&un);
    int under_ruml = strstr(un.release, "ruml") != NULL;
    int added = 0, lasterr = 0;
    for (int i = 0; under_ruml && i < 300; i++) {
        struct {
            struct nlmsghdr h;
            struct ifaddrmsg a;
            struct rtattr ra;
            unsigned char ip[4];
        } req = {.h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_NEWADDR,
                       .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                       .nlmsg_seq = i},
                 .a = {.ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_index = 1},
                 .ra = {.rta_len = RTA_LENGTH(4), .rta_type = IFA_LOCAL},
                 .ip = {10, 77, i / 256, i % 256}};
        send(nl, &req, sizeof req, 0);
        char ack[256];
        if (recv(nl, ack, sizeof ack, 0) > 0) {
            struct nlmsgerr *ae = NLMSG_DATA((struct nlmsghdr *)ack);
            if (ae->error == 0)
                added++;
            else
                lasterr = -ae->error;
        }
    }
    if (under_ruml)
        printf("%s 300 addresses: %d added, then %s\n", added > 0 ? "ok" : "FAIL", added,
               lasterr ? strerrorname_np(lasterr) : "none refused");
    static char hugemsg[300000];
    expect("netlink message beyond SO_SNDBUF", send(nl, hugemsg, sizeof hugemsg, 0), EMSGSIZE);
    close(nl);
    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures != 0;
}
