/* epoll_ctl's order of checks, as Linux: the event is copied in first
 * (EFAULT for every op but DEL, an unknown op included), then both
 * descriptors (EBADF, O_PATH ones too), then whether the target can be
 * polled (EPERM for regular files and directories), then EINVAL (same
 * file, not an epoll instance, unknown op). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static void show(const char *what, int r) {
    printf("%-44s %d %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

int main(void) {
    int ep = epoll_create1(0);
    int p[2];
    if (ep < 0 || pipe(p) != 0)
        return 2;
    int reg = open("/proc/self/exe", O_RDONLY);
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    int opath = open("/", O_PATH);
    struct epoll_event ev = {.events = EPOLLIN};
    void *bad = (void *)16;

    show("ADD bad event, bad fd", epoll_ctl(ep, EPOLL_CTL_ADD, 999, bad));
    show("ADD bad event, bad epfd", epoll_ctl(999, EPOLL_CTL_ADD, p[0], bad));
    show("ADD bad event, regular file", epoll_ctl(ep, EPOLL_CTL_ADD, reg, bad));
    show("MOD bad event, pipe not added", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], bad));
    show("DEL bad event, regular file", epoll_ctl(ep, EPOLL_CTL_DEL, reg, bad));
    show("DEL bad event, pipe not added", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], bad));
    show("op 99 bad event", epoll_ctl(ep, 99, p[0], bad));
    show("op 99 good event", epoll_ctl(ep, 99, p[0], &ev));
    show("ADD regular file", epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev));
    show("ADD directory", epoll_ctl(ep, EPOLL_CTL_ADD, dir, &ev));
    show("ADD O_PATH fd", epoll_ctl(ep, EPOLL_CTL_ADD, opath, &ev));
    show("ADD on an O_PATH epfd", epoll_ctl(opath, EPOLL_CTL_ADD, p[0], &ev));
    show("ADD bad fd", epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev));
    show("epfd a regular file, target regular", epoll_ctl(reg, EPOLL_CTL_ADD, reg, &ev));
    show("epfd a regular file, target pipe", epoll_ctl(reg, EPOLL_CTL_ADD, p[0], &ev));
    show("epfd a pipe, target pipe", epoll_ctl(p[1], EPOLL_CTL_ADD, p[0], &ev));
    show("epfd a pipe, target itself", epoll_ctl(p[0], EPOLL_CTL_ADD, p[0], &ev));
    show("ADD itself", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
    show("ADD pipe", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    show("ADD pipe again", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    show("MOD pipe", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    show("DEL pipe", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    show("DEL pipe again", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    return 0;
}
