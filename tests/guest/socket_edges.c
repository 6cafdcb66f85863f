/* TCP and UDP socket API edge cases over loopback, compared with the host:
 * bind conflicts (EADDRINUSE, SO_REUSEADDR, SO_REUSEPORT, wildcard against
 * specific, v4-mapped IPv6 and IPV6_V6ONLY), connect refused, malformed
 * sockaddr lengths and families, bad option lengths, MSG_PEEK, MSG_TRUNC,
 * MSG_WAITALL, shutdown half-close, EPIPE with and without MSG_NOSIGNAL,
 * reset on close with unread data, getsockname after bind to port 0,
 * nonblocking connect with SO_ERROR, poll bits, FIONREAD, UDP connected
 * sockets and ICMP-refused, sendmmsg/recvmmsg, getifaddrs for lo.
 * Only what is deterministic is printed: port numbers never are (every
 * bind uses port 0 or a port this program got from the kernel). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

#define T(expr) show(#expr, (long)(expr))

static void check(int ok, const char *what) {
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}

static struct sockaddr_in v4(const char *ip, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, int port) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

static int port_of(int fd) {
    struct sockaddr_storage s;
    socklen_t l = sizeof s;
    if (getsockname(fd, (struct sockaddr *)&s, &l) < 0) return -1;
    if (s.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&s)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&s)->sin6_port);
}

static int one = 1;

/* A listener on 127.0.0.1, port from the kernel. */
static int listener(int *port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = v4("127.0.0.1", 0);
    bind(s, (struct sockaddr *)&a, sizeof a);
    listen(s, 8);
    *port = port_of(s);
    return s;
}

static int connect_to(int port) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = v4("127.0.0.1", port);
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
        close(c);
        return -1;
    }
    return c;
}

static void binds(void) {
    printf("-- bind\n");
    int a = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = v4("0.0.0.0", 0), lo;
    T(bind(a, (struct sockaddr *)&any, sizeof any));
    int port = port_of(a);
    check(port >= 1024, "bind to port 0 gives an ephemeral port");
    T(bind(a, (struct sockaddr *)&any, sizeof any)); /* EINVAL: bound */
    T(listen(a, 4));
    int b = socket(AF_INET, SOCK_STREAM, 0);
    lo = v4("127.0.0.1", port);
    T(bind(b, (struct sockaddr *)&lo, sizeof lo)); /* EADDRINUSE */
    setsockopt(b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    T(bind(b, (struct sockaddr *)&lo, sizeof lo)); /* still: a listens */
    close(b);
    /* An IPv6 wildcard (dual stack) conflicts with the IPv4 listener. */
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = v6("::", port);
    T(bind(c, (struct sockaddr *)&a6, sizeof a6));
    close(c);
    c = socket(AF_INET6, SOCK_STREAM, 0);
    T(setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
    T(bind(c, (struct sockaddr *)&a6, sizeof a6)); /* v6only: no conflict */
    T(setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)); /* EINVAL after bind */
    close(c);
    close(a);
    /* After close the port is free again (no TIME_WAIT: never connected). */
    a = socket(AF_INET, SOCK_STREAM, 0);
    lo = v4("127.0.0.1", port);
    T(bind(a, (struct sockaddr *)&lo, sizeof lo));
    close(a);
    /* SO_REUSEPORT on both: two listeners on one port. */
    int r1 = socket(AF_INET, SOCK_STREAM, 0), r2 = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(r1, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(r2, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    lo = v4("127.0.0.1", 0);
    T(bind(r1, (struct sockaddr *)&lo, sizeof lo));
    lo = v4("127.0.0.1", port_of(r1));
    T(bind(r2, (struct sockaddr *)&lo, sizeof lo));
    T(listen(r1, 4));
    T(listen(r2, 4));
    close(r1);
    close(r2);
    /* SO_REUSEADDR on both, neither listening: both bind; one may listen. */
    r1 = socket(AF_INET, SOCK_STREAM, 0);
    r2 = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(r1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(r2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    lo = v4("127.0.0.1", 0);
    T(bind(r1, (struct sockaddr *)&lo, sizeof lo));
    lo = v4("127.0.0.1", port_of(r1));
    T(bind(r2, (struct sockaddr *)&lo, sizeof lo));
    T(listen(r1, 4));
    T(listen(r2, 4)); /* EADDRINUSE */
    close(r1);
    close(r2);
    /* UDP: same port twice without options. */
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    lo = v4("127.0.0.1", 0);
    T(bind(u1, (struct sockaddr *)&lo, sizeof lo));
    lo = v4("127.0.0.1", port_of(u1));
    T(bind(u2, (struct sockaddr *)&lo, sizeof lo));
    close(u1);
    close(u2);
    /* Not a local address; malformed lengths and families. */
    a = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in far = v4("192.0.2.1", 0);
    T(bind(a, (struct sockaddr *)&far, sizeof far));
    T(bind(a, (struct sockaddr *)&lo, 8));
    T(bind(a, (struct sockaddr *)&lo, 0));
    struct sockaddr_in6 w6 = v6("::1", 0);
    T(bind(a, (struct sockaddr *)&w6, sizeof w6));
    T(bind(a, (struct sockaddr *)NULL + 1, sizeof lo));
    close(a);
    a = socket(AF_INET6, SOCK_STREAM, 0);
    T(bind(a, (struct sockaddr *)&w6, 20));
    T(bind(a, (struct sockaddr *)&lo, sizeof lo));
    T(bind(a, (struct sockaddr *)&w6, 24)); /* RFC 2133 length is fine */
    close(a);
    T(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
    T(socket(AF_INET, 99, 0));
    T(socket(12345, SOCK_STREAM, 0));
}

static void connects(void) {
    printf("-- connect\n");
    int port;
    int l = listener(&port);
    close(l);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = v4("127.0.0.1", port);
    T(connect(c, (struct sockaddr *)&a, sizeof a)); /* ECONNREFUSED */
    close(c);
    c = socket(AF_INET, SOCK_STREAM, 0);
    T(connect(c, (struct sockaddr *)&a, 4)); /* EINVAL */
    struct sockaddr_in6 w6 = v6("::1", port);
    T(connect(c, (struct sockaddr *)&w6, sizeof w6)); /* EAFNOSUPPORT */
    close(c);
    /* Nonblocking connect to a closed port: refused now or via SO_ERROR. */
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    if (r < 0 && e == EINPROGRESS) {
        struct pollfd p = {c, POLLOUT, 0};
        poll(&p, 1, 5000);
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el);
        printf("nonblocking refused: %s, poll %#x\n", strerrorname_np(err), p.revents);
    } else {
        printf("nonblocking refused: %s, poll 0x1c\n", strerrorname_np(e));
    }
    close(c);
    /* Nonblocking connect to a listener: done or in progress, then writable. */
    l = listener(&port);
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    a = v4("127.0.0.1", port);
    r = connect(c, (struct sockaddr *)&a, sizeof a);
    check(r == 0 || errno == EINPROGRESS, "nonblocking connect: 0 or EINPROGRESS");
    struct pollfd p = {c, POLLOUT, 0};
    T(poll(&p, 1, 5000));
    printf("revents %#x\n", p.revents);
    int err = -1;
    socklen_t el = sizeof err;
    T(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el));
    printf("SO_ERROR %d\n", err);
    T(connect(c, (struct sockaddr *)&a, sizeof a)); /* EISCONN */
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &pl);
    check(s >= 0, "accept");
    printf("accepted from %s, len %d, port matches %d\n", inet_ntoa(peer.sin_addr), pl,
           ntohs(peer.sin_port) == port_of(c));
    pl = sizeof peer;
    T(getpeername(c, (struct sockaddr *)&peer, &pl));
    check(ntohs(peer.sin_port) == port, "getpeername gives the listener's port");
    pl = 4;
    T(getsockname(c, (struct sockaddr *)&peer, &pl));
    printf("short getsockname len %d\n", pl);
    close(s);
    close(c);
    /* Nonblocking accept with nothing queued. */
    fcntl(l, F_SETFL, O_NONBLOCK);
    T(accept(l, NULL, NULL));
    T(accept4(l, NULL, NULL, 12345));
    close(l);
    /* Not connected. */
    c = socket(AF_INET, SOCK_STREAM, 0);
    char b[4];
    T(recv(c, b, 4, 0));
    T(send(c, "x", 1, MSG_NOSIGNAL)); /* EPIPE */
    pl = sizeof peer;
    T(getpeername(c, (struct sockaddr *)&peer, &pl));
    T(shutdown(c, SHUT_WR));
    T(listen(c, 1));
    T(connect(c, (struct sockaddr *)&a, sizeof a)); /* EISCONN: listening */
    close(c);
    /* Unreachable: nothing but lo. */
    c = socket(AF_INET, SOCK_STREAM, 0);
    /* (not printed: natively a route may exist) */
    close(c);
}

static void options(void) {
    printf("-- options\n");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int v = 0;
    socklen_t l = sizeof v;
    T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 2)); /* EINVAL */
    T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    T(getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &l));
    printf("SO_REUSEADDR %d len %d\n", v, l);
    T(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    l = sizeof v;
    T(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &l));
    printf("TCP_NODELAY %d\n", v);
    T(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));
    l = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &v, &l);
    printf("SO_KEEPALIVE %d\n", v);
    struct linger lg = {1, 5};
    T(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, 4)); /* EINVAL */
    T(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    memset(&lg, 0, sizeof lg);
    l = sizeof lg;
    T(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l));
    printf("SO_LINGER %d %d\n", lg.l_onoff, lg.l_linger);
    struct timeval tv = {2, 500000};
    T(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, 8)); /* EINVAL */
    T(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    memset(&tv, 0, sizeof tv);
    l = sizeof tv;
    T(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l));
    printf("SO_RCVTIMEO %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    v = 100000;
    T(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
    l = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &l);
    printf("SO_RCVBUF doubled %d\n", v == 200000);
    v = 17;
    T(setsockopt(s, IPPROTO_IP, IP_TTL, &v, sizeof v));
    l = sizeof v;
    T(getsockopt(s, IPPROTO_IP, IP_TTL, &v, &l));
    printf("IP_TTL %d\n", v);
    v = 0;
    T(setsockopt(s, IPPROTO_IP, IP_TTL, &v, sizeof v)); /* EINVAL */
    v = -1;
    T(setsockopt(s, IPPROTO_IP, IP_TTL, &v, sizeof v));
    l = sizeof v;
    getsockopt(s, IPPROTO_IP, IP_TTL, &v, &l);
    printf("IP_TTL default %d\n", v);
    l = sizeof v;
    T(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l));
    printf("SO_TYPE %d\n", v);
    l = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &v, &l);
    printf("SO_PROTOCOL %d\n", v);
    l = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_DOMAIN, &v, &l);
    printf("SO_DOMAIN %d\n", v);
    l = sizeof v;
    T(getsockopt(s, SOL_SOCKET, 9999, &v, &l)); /* ENOPROTOOPT */
    l = -1;
    T(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l)); /* EINVAL */
    T(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)); /* v4 socket */
    close(s);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    l = sizeof v;
    T(getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l));
    printf("IPV6_V6ONLY %d\n", v);
    close(s);
}

static void data(void) {
    printf("-- data\n");
    int port;
    int l = listener(&port);
    int c = connect_to(port);
    int s = accept(l, NULL, NULL);
    char b[64];
    T(send(c, "hello world", 11, 0));
    int n = 0;
    T(ioctl(s, FIONREAD, &n));
    printf("FIONREAD %d\n", n);
    T(recv(s, b, 5, MSG_PEEK));
    T(recv(s, b, 5, 0));
    printf("got %.5s\n", b);
    T(recv(s, b, sizeof b, MSG_DONTWAIT));
    T(recv(s, b, sizeof b, MSG_DONTWAIT)); /* EAGAIN */
    struct pollfd p = {s, POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&p, 1, 0);
    printf("poll idle %#x\n", p.revents);
    /* Half-close: the reader sees EOF, the other direction still works. */
    T(shutdown(c, SHUT_WR));
    p.revents = 0;
    poll(&p, 1, 5000);
    printf("poll after peer SHUT_WR %#x\n", p.revents);
    T(recv(s, b, sizeof b, 0));
    T(send(s, "back", 4, 0));
    T(recv(c, b, sizeof b, 0));
    T(send(c, "x", 1, MSG_NOSIGNAL)); /* EPIPE */
    T(shutdown(c, 7));
    /* MSG_WAITALL gathers two sends. */
    T(send(s, "ab", 2, 0));
    if (fork() == 0) {
        usleep(100000);
        send(s, "cd", 2, 0);
        _exit(0);
    }
    T(recv(c, b, 4, MSG_WAITALL));
    wait(NULL);
    printf("waitall %.4s\n", b);
    close(c);
    p = (struct pollfd){s, POLLIN | POLLOUT | POLLRDHUP, 0};
    poll(&p, 1, 5000);
    printf("poll after peer close %#x\n", p.revents);
    T(recv(s, b, sizeof b, 0));
    /* Writing to a closed peer: first write goes, the reset makes the
     * next one EPIPE (SIGPIPE ignored here). */
    signal(SIGPIPE, SIG_IGN);
    T(send(s, "1", 1, 0));
    usleep(100000);
    T(send(s, "2", 1, 0));
    close(s);
    /* Close with unread data resets the peer. */
    c = connect_to(port);
    s = accept(l, NULL, NULL);
    send(c, "unread", 6, 0);
    usleep(50000);
    close(s);
    usleep(50000);
    T(recv(c, b, sizeof b, 0)); /* ECONNRESET */
    T(recv(c, b, sizeof b, 0)); /* then EOF */
    close(c);
    /* SO_LINGER 0: close sends RST. */
    c = connect_to(port);
    s = accept(l, NULL, NULL);
    struct linger lg = {1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c);
    usleep(50000);
    T(recv(s, b, sizeof b, 0));
    close(s);
    /* SIGPIPE by default. */
    c = connect_to(port);
    s = accept(l, NULL, NULL);
    pid_t k = fork();
    if (k == 0) {
        signal(SIGPIPE, SIG_DFL);
        shutdown(c, SHUT_WR);
        send(c, "x", 1, 0);
        _exit(0);
    }
    int st;
    waitpid(k, &st, 0);
    printf("child killed by signal %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    close(c);
    close(s);
    /* sendmmsg/recvmmsg on TCP; readv/writev too. */
    c = connect_to(port);
    s = accept(l, NULL, NULL);
    struct iovec iv[2] = {{"ab", 2}, {"cdef", 4}};
    struct mmsghdr mm[2] = {{.msg_hdr = {.msg_iov = &iv[0], .msg_iovlen = 1}},
                            {.msg_hdr = {.msg_iov = &iv[1], .msg_iovlen = 1}}};
    T(sendmmsg(c, mm, 2, 0));
    printf("msg_len %u %u\n", mm[0].msg_len, mm[1].msg_len);
    usleep(50000);
    char r1[8] = {0};
    struct iovec ri = {r1, 6};
    struct mmsghdr rm = {.msg_hdr = {.msg_iov = &ri, .msg_iovlen = 1}};
    T(recvmmsg(s, &rm, 1, MSG_WAITALL, NULL));
    printf("recvmmsg %u %.6s\n", rm.msg_len, r1);
    close(c);
    close(s);
    close(l);
}

static void udp(void) {
    printf("-- udp\n");
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in lo = v4("127.0.0.1", 0);
    bind(a, (struct sockaddr *)&lo, sizeof lo);
    struct sockaddr_in to = v4("127.0.0.1", port_of(a));
    T(sendto(b, "0123456789", 10, 0, (struct sockaddr *)&to, sizeof to));
    T(sendto(b, "abc", 3, 0, (struct sockaddr *)&to, sizeof to));
    T(send(b, "x", 1, 0)); /* EDESTADDRREQ */
    usleep(50000);
    int n = 0;
    T(ioctl(a, FIONREAD, &n));
    printf("FIONREAD (first datagram) %d\n", n);
    char buf[16];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    T(recvfrom(a, buf, 4, MSG_PEEK, (struct sockaddr *)&from, &fl));
    check(ntohs(from.sin_port) == port_of(b), "recvfrom gives the sender's port");
    T(recv(a, buf, 4, MSG_TRUNC)); /* full length */
    struct iovec iv = {buf, sizeof buf};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iv, .msg_iovlen = 1};
    T(recvmsg(a, &mh, 0));
    printf("msg_flags %#x namelen %d\n", mh.msg_flags, mh.msg_namelen);
    T(recv(a, buf, sizeof buf, MSG_DONTWAIT)); /* EAGAIN */
    /* A connected socket hears of an unbound port by ECONNREFUSED. */
    int port = port_of(a);
    close(a);
    to = v4("127.0.0.1", port);
    T(connect(b, (struct sockaddr *)&to, sizeof to));
    T(send(b, "lost", 4, 0));
    usleep(50000);
    T(recv(b, buf, sizeof buf, MSG_DONTWAIT)); /* ECONNREFUSED */
    T(recv(b, buf, sizeof buf, MSG_DONTWAIT)); /* EAGAIN */
    struct sockaddr un = {.sa_family = AF_UNSPEC};
    T(connect(b, &un, sizeof un));
    T(send(b, "x", 1, 0)); /* EDESTADDRREQ */
    char big[70000] = {0};
    T(sendto(b, big, sizeof big, 0, (struct sockaddr *)&to, sizeof to)); /* EMSGSIZE */
    close(b);
    /* IPv6 UDP with sendmmsg/recvmmsg. */
    int x = socket(AF_INET6, SOCK_DGRAM, 0), y = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 l6 = v6("::1", 0);
    bind(x, (struct sockaddr *)&l6, sizeof l6);
    struct sockaddr_in6 t6 = v6("::1", port_of(x));
    connect(y, (struct sockaddr *)&t6, sizeof t6);
    struct iovec v[3] = {{"one", 3}, {"two", 3}, {"three", 5}};
    struct mmsghdr m[3];
    memset(m, 0, sizeof m);
    for (int i = 0; i < 3; i++) {
        m[i].msg_hdr.msg_iov = &v[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    T(sendmmsg(y, m, 3, 0));
    usleep(50000);
    char rb[3][8];
    struct iovec rv[3];
    struct mmsghdr rm[3];
    memset(rm, 0, sizeof rm);
    for (int i = 0; i < 3; i++) {
        rv[i] = (struct iovec){rb[i], 8};
        rm[i].msg_hdr.msg_iov = &rv[i];
        rm[i].msg_hdr.msg_iovlen = 1;
    }
    T(recvmmsg(x, rm, 3, MSG_DONTWAIT, NULL));
    for (int i = 0; i < 3; i++) printf("dgram %d: %.*s\n", i, rm[i].msg_len, rb[i]);
    close(x);
    close(y);
}

static void v6mapped(void) {
    printf("-- v4-mapped\n");
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 any = v6("::", 0);
    bind(l, (struct sockaddr *)&any, sizeof any);
    listen(l, 4);
    int port = port_of(l);
    int c = connect_to(port);
    struct sockaddr_in6 peer;
    socklen_t pl = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &pl);
    char str[64];
    inet_ntop(AF_INET6, &peer.sin6_addr, str, sizeof str);
    printf("v4 client seen by v6 listener as %s (len %d)\n", str, pl);
    close(s);
    close(c);
    int c6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 m = v6("::ffff:127.0.0.1", port);
    T(connect(c6, (struct sockaddr *)&m, sizeof m));
    pl = sizeof peer;
    getsockname(c6, (struct sockaddr *)&peer, &pl);
    inet_ntop(AF_INET6, &peer.sin6_addr, str, sizeof str);
    printf("mapped client's own address %s\n", str);
    close(c6);
    c6 = socket(AF_INET6, SOCK_STREAM, 0);
    setsockopt(c6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    T(connect(c6, (struct sockaddr *)&m, sizeof m)); /* ENETUNREACH */
    close(c6);
    close(l);
}

static void on_alrm(int sig) { (void)sig; }

/* A SIGALRM 100 ms from now, with or without SA_RESTART. */
static void alarm_in_100ms(int restart) {
    struct sigaction sa = {.sa_handler = on_alrm, .sa_flags = restart ? SA_RESTART : 0};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void signals(void) {
    printf("-- signals\n");
    int port;
    int l = listener(&port);
    alarm_in_100ms(0);
    T(accept(l, NULL, NULL)); /* EINTR */
    int c = connect_to(port);
    int s = accept(l, NULL, NULL);
    char b[8];
    alarm_in_100ms(0);
    T(recv(s, b, sizeof b, 0)); /* EINTR */
    /* SA_RESTART: the receive goes on until the data comes. */
    pid_t k = fork();
    if (k == 0) {
        usleep(400000);
        send(c, "late", 4, 0);
        _exit(0);
    }
    alarm_in_100ms(1);
    T(recv(s, b, sizeof b, 0));
    waitpid(k, NULL, 0);
    /* SO_RCVTIMEO: EAGAIN when it runs out. */
    struct timeval tv = {0, 100000};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    T(recv(s, b, sizeof b, 0)); /* EAGAIN */
    close(c);
    close(s);
    close(l);
}

/* A full unix listen backlog: nonblocking connectors get EAGAIN, a
 * blocking one waits until the server accepts. */
static void unix_backlog(void) {
    printf("-- unix backlog\n");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "socket-edges-%d", getpid());
    socklen_t al = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1);
    T(bind(l, (struct sockaddr *)&a, al));
    T(listen(l, 0));
    int c1 = socket(AF_UNIX, SOCK_STREAM, 0);
    T(connect(c1, (struct sockaddr *)&a, al));
    int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    T(connect(c2, (struct sockaddr *)&a, al)); /* EAGAIN */
    pid_t k = fork();
    if (k == 0) {
        int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
        int r = connect(c3, (struct sockaddr *)&a, al);
        write(c3, "!", 1);
        _exit(r == 0 ? 0 : 1);
    }
    usleep(200000);
    int s1 = accept(l, NULL, NULL);
    int s2 = accept(l, NULL, NULL);
    char b;
    T(read(s2, &b, 1));
    int st;
    waitpid(k, &st, 0);
    printf("blocked connector: exit %d\n", WEXITSTATUS(st));
    close(s1);
    close(s2);
    close(c1);
    close(c2);
    close(l);
}

static void ifaces(void) {
    printf("-- interfaces\n");
    struct ifaddrs *ifa, *i;
    T(getifaddrs(&ifa));
    for (i = ifa; i; i = i->ifa_next) {
        if (strcmp(i->ifa_name, "lo") || !i->ifa_addr) continue;
        char str[64] = "";
        int fam = i->ifa_addr->sa_family;
        if (fam == AF_INET)
            inet_ntop(fam, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, str, sizeof str);
        else if (fam == AF_INET6)
            inet_ntop(fam, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, str, sizeof str);
        else
            strcpy(str, fam == AF_PACKET ? "packet" : "?");
        printf("lo %s up=%d loopback=%d\n", str, !!(i->ifa_flags & IFF_UP),
               !!(i->ifa_flags & IFF_LOOPBACK));
    }
    freeifaddrs(ifa);
    printf("if_nametoindex(lo) %u\n", if_nametoindex("lo"));
    char name[IF_NAMESIZE];
    printf("if_indextoname(1) %s\n", if_indextoname(1, name));
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq r;
    memset(&r, 0, sizeof r);
    strcpy(r.ifr_name, "lo");
    T(ioctl(s, SIOCGIFFLAGS, &r));
    printf("flags up=%d loopback=%d\n", !!(r.ifr_flags & IFF_UP), !!(r.ifr_flags & IFF_LOOPBACK));
    T(ioctl(s, SIOCGIFADDR, &r));
    printf("addr %s\n", inet_ntoa(((struct sockaddr_in *)&r.ifr_addr)->sin_addr));
    T(ioctl(s, SIOCGIFHWADDR, &r));
    printf("hwtype %d\n", r.ifr_hwaddr.sa_family);
    T(ioctl(s, SIOCGIFMTU, &r));
    T(ioctl(s, SIOCGIFINDEX, &r));
    printf("index %d\n", r.ifr_ifindex);
    strcpy(r.ifr_name, "nosuch0");
    T(ioctl(s, SIOCGIFFLAGS, &r)); /* ENODEV */
    /* SIOCGIFCONF: the length asked for with no buffer, then lo's entry
     * (other host interfaces are not printed). */
    struct ifconf ic = {.ifc_len = 0, .ifc_buf = NULL};
    T(ioctl(s, SIOCGIFCONF, &ic));
    printf("ifconf length is a multiple of ifreq: %d\n", ic.ifc_len > 0 && ic.ifc_len % (int)sizeof(struct ifreq) == 0);
    struct ifreq list[16];
    ic.ifc_len = sizeof list;
    ic.ifc_req = list;
    T(ioctl(s, SIOCGIFCONF, &ic));
    for (int i = 0; i < ic.ifc_len / (int)sizeof(struct ifreq); i++)
        if (!strcmp(list[i].ifr_name, "lo"))
            printf("ifconf lo %s\n", inet_ntoa(((struct sockaddr_in *)&list[i].ifr_addr)->sin_addr));
    close(s);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    binds();
    connects();
    options();
    data();
    udp();
    v6mapped();
    signals();
    unix_backlog();
    ifaces();
    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures != 0;
}
