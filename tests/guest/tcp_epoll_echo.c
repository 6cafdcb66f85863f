/* An epoll echo server (a child process) and 200 concurrent nonblocking
 * clients (the parent, one epoll loop) over TCP on loopback, IPv4 or
 * IPv6 (argv[1] = "4" or "6"; argv[2] the listen backlog). Every client connects without blocking,
 * sends 64 KiB of its own pattern in pieces as the socket takes them,
 * half-closes, and reads the echo to EOF; every byte is checked. The
 * server accepts with accept4(SOCK_NONBLOCK), echoes with edge-triggered
 * epoll, and shuts its side down when the client's side reaches EOF. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENTS 200
#define BYTES (64 * 1024)

static int fam;

static unsigned char pattern(int client, long off) {
    return (unsigned char)((client * 131 + off * 7 + (off >> 9)) & 0xff);
}

static void die(const char *what) {
    printf("FAIL: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The server's per-connection state: bytes read but not yet echoed. */
struct conn {
    int fd;
    char buf[16384];
    int have, sent;
    int eof;
};

static void serve(int l) {
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0) die("epoll_ctl listener");
    int done = 0;
    while (done < CLIENTS) {
        struct epoll_event out[64];
        int n = epoll_wait(ep, out, 64, 30000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("server epoll_wait");
        }
        if (n == 0) {
            printf("FAIL: server idle for 30 s with %d done\n", done);
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = out[i].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) {
                        if (errno == EAGAIN) break;
                        die("accept4");
                    }
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP,
                                            .data.ptr = nc};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl conn");
                }
                continue;
            }
            /* Edge-triggered: move as much as possible both ways. */
            for (;;) {
                int progress = 0;
                if (c->sent < c->have) {
                    ssize_t w = send(c->fd, c->buf + c->sent, c->have - c->sent, MSG_NOSIGNAL);
                    if (w > 0) {
                        c->sent += w;
                        progress = 1;
                    } else if (w < 0 && errno != EAGAIN) {
                        die("server send");
                    }
                }
                if (c->sent == c->have) c->sent = c->have = 0;
                if (!c->eof && c->have < (int)sizeof c->buf) {
                    ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
                    if (r > 0) {
                        c->have += r;
                        progress = 1;
                    } else if (r == 0) {
                        c->eof = 1;
                        progress = 1;
                    } else if (errno != EAGAIN) {
                        die("server recv");
                    }
                }
                if (c->eof && c->have == 0) {
                    shutdown(c->fd, SHUT_WR);
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    free(c);
                    done++;
                    break;
                }
                if (!progress) break;
            }
        }
    }
    exit(0);
}

struct client {
    int fd;
    long sent, got;
    int wr_done;
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    fam = argc > 1 && argv[1][0] == '6' ? AF_INET6 : AF_INET;
    struct sockaddr_storage sa;
    socklen_t sl;
    memset(&sa, 0, sizeof sa);
    if (fam == AF_INET) {
        struct sockaddr_in *a = (void *)&sa;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (void *)&sa;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        sl = sizeof *a;
    }
    int l = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (l < 0) die("socket");
    if (bind(l, (struct sockaddr *)&sa, sl) < 0) die("bind");
    /* argv[2]: the backlog (default 512: room for every client, as a
     * host under load needs). With a small one, connectors beyond it
     * wait for the server's accepts (ruml's tests use 16). */
    if (listen(l, argc > 2 ? atoi(argv[2]) : 512) < 0) die("listen");
    if (getsockname(l, (struct sockaddr *)&sa, &sl) < 0) die("getsockname");
    pid_t srv = fork();
    if (srv == 0) serve(l);
    close(l);

    int ep = epoll_create1(0);
    static struct client cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) die("client socket");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&sa, sl) < 0 && errno != EINPROGRESS) die("connect");
        cl[i].fd = fd;
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl client");
    }
    int finished = 0, bad = 0;
    unsigned char buf[8192];
    while (finished < CLIENTS) {
        struct epoll_event out[64];
        int n = epoll_wait(ep, out, 64, 30000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("client epoll_wait");
        }
        if (n == 0) {
            printf("FAIL: clients idle for 30 s with %d finished\n", finished);
            kill(srv, SIGKILL);
            return 1;
        }
        for (int k = 0; k < n; k++) {
            int i = out[k].data.u32;
            struct client *c = &cl[i];
            if (out[k].events & EPOLLERR) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                printf("FAIL: client %d: error %s\n", i, strerror(err));
                return 1;
            }
            for (;;) {
                int progress = 0;
                while (!c->wr_done && c->sent < BYTES) {
                    long chunk = BYTES - c->sent;
                    if (chunk > 3000 + i) chunk = 3000 + i;
                    unsigned char p[4096];
                    for (long j = 0; j < chunk; j++) p[j] = pattern(i, c->sent + j);
                    ssize_t w = send(c->fd, p, chunk, MSG_NOSIGNAL);
                    if (w < 0) {
                        if (errno == EAGAIN || errno == ENOTCONN) break;
                        die("client send");
                    }
                    c->sent += w;
                    progress = 1;
                }
                if (!c->wr_done && c->sent == BYTES) {
                    if (shutdown(c->fd, SHUT_WR) < 0) die("shutdown");
                    c->wr_done = 1;
                }
                ssize_t r = recv(c->fd, buf, sizeof buf, 0);
                if (r > 0) {
                    for (long j = 0; j < r; j++)
                        if (buf[j] != pattern(i, c->got + j)) bad++;
                    c->got += r;
                    progress = 1;
                } else if (r == 0) {
                    if (c->got != BYTES) {
                        printf("FAIL: client %d: EOF after %ld bytes\n", i, c->got);
                        return 1;
                    }
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    finished++;
                    break;
                } else if (errno != EAGAIN && errno != ENOTCONN) {
                    die("client recv");
                }
                if (!progress) break;
            }
        }
    }
    int st;
    waitpid(srv, &st, 0);
    printf("clients: %d, bytes each: %d, mismatched bytes: %d, server exit: %d\n", CLIENTS, BYTES,
           bad, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    printf("result: %s\n", bad == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "OK" : "FAIL");
    return bad != 0;
}
