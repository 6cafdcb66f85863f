/* epoll's limits: nesting depth (ELOOP past EP_MAX_NESTS, whichever way
 * the chain is built), cycles (ELOOP), EPOLLEXCLUSIVE's EINVAL cases and
 * EPERM for a regular file; the same natively and under ruml. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <fcntl.h>
static const char *e(long r) { return r < 0 ? strerrorname_np(errno) : "ok"; }
int main(void) {
    struct epoll_event ev = {.events = EPOLLIN};
    int E[10];
    for (int i = 0; i < 10; i++) E[i] = epoll_create1(0);
    for (int i = 0; i < 9; i++) printf("top-down add %d into %d: %s\n", i + 1, i, e(epoll_ctl(E[i], EPOLL_CTL_ADD, E[i + 1], &ev)));
    int f[10];
    for (int i = 0; i < 10; i++) f[i] = epoll_create1(0);
    for (int i = 8; i >= 0; i--) printf("bottom-up add %d into %d: %s\n", i + 1, i, e(epoll_ctl(f[i], EPOLL_CTL_ADD, f[i + 1], &ev)));
    int a = epoll_create1(0), b = epoll_create1(0), c = epoll_create1(0);
    printf("a<-b %s\n", e(epoll_ctl(a, EPOLL_CTL_ADD, b, &ev)));
    printf("b<-c %s\n", e(epoll_ctl(b, EPOLL_CTL_ADD, c, &ev)));
    printf("c<-a %s\n", e(epoll_ctl(c, EPOLL_CTL_ADD, a, &ev)));
    printf("b<-a %s\n", e(epoll_ctl(b, EPOLL_CTL_ADD, a, &ev)));
    printf("a<-a %s\n", e(epoll_ctl(a, EPOLL_CTL_ADD, a, &ev)));
    struct epoll_event x = {.events = EPOLLIN | EPOLLEXCLUSIVE};
    int d = epoll_create1(0);
    printf("excl epoll target %s\n", e(epoll_ctl(a, EPOLL_CTL_ADD, d, &x)));
    int p[2]; pipe(p);
    x.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLRDHUP;
    printf("excl rdhup %s\n", e(epoll_ctl(d, EPOLL_CTL_ADD, p[0], &x)));
    x.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLPRI;
    printf("excl pri %s\n", e(epoll_ctl(d, EPOLL_CTL_ADD, p[0], &x)));
    x.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLET;
    printf("excl et %s\n", e(epoll_ctl(d, EPOLL_CTL_ADD, p[0], &x)));
    printf("excl mod %s\n", e(epoll_ctl(d, EPOLL_CTL_MOD, p[0], &x)));
    int rf = open("/etc/hostname", O_RDONLY);
    printf("regular %s\n", e(epoll_ctl(d, EPOLL_CTL_ADD, rf, &ev)));
    return 0;
}
