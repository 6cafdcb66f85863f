/*
 * epoll_et_quiet: edge-triggered interest in a file that is always ready
 * and never changes (/dev/random, as UML's random driver watches it) is
 * reported once after EPOLL_CTL_ADD and after EPOLL_CTL_MOD, then not
 * again; level-triggered interest is reported every time.
 * Differential: the same lines natively and under ruml.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

static int waits(int ep)
{
    struct epoll_event ev[4];
    int r = epoll_wait(ep, ev, 4, 0);
    if (r > 0 && ev[0].data.u64 != 42)
        printf("wrong data FAIL\n");
    return r;
}

int main(void)
{
    int fd = open("/dev/random", O_RDONLY | O_NONBLOCK);
    int ep = epoll_create1(0);
    if (fd < 0 || ep < 0) {
        perror("open");
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 42};
    printf("add ET: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    printf("ET wait 1: %d\n", waits(ep));
    printf("ET wait 2: %d\n", waits(ep));
    printf("ET wait 3: %d\n", waits(ep));
    printf("mod ET: %d\n", epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
    printf("ET wait after mod: %d\n", waits(ep));
    printf("ET wait again: %d\n", waits(ep));
    ev.events = EPOLLIN;
    printf("mod LT: %d\n", epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
    printf("LT wait 1: %d\n", waits(ep));
    printf("LT wait 2: %d\n", waits(ep));
    printf("result: OK\n");
    return 0;
}
