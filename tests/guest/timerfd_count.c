/* A timerfd's count is the expiries whose time has passed when it is read
 * (Linux forwards the timer to now at read and poll): never fewer, however
 * late the kernel's timer thread is on a busy machine. */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {.it_value = {0, 1000000}, .it_interval = {0, 1000000}};
    if (t < 0 || timerfd_settime(t, 0, &its, NULL) != 0)
        return 2;
    usleep(50000);
    uint64_t v = 0;
    if (read(t, &v, 8) != 8)
        return 2;
    printf("read after 50 ms of a 1 ms timer: %s\n", v >= 50 ? "at least 50" : "fewer");
    usleep(20000);
    struct pollfd p = {.fd = t, .events = POLLIN};
    printf("poll: %d\n", poll(&p, 1, 0));
    if (read(t, &v, 8) != 8)
        return 2;
    printf("read after 20 ms more: %s\n", v >= 20 ? "at least 20" : "fewer");
    /* One-shot, 5 ms, read after 30 ms: exactly one. */
    struct itimerspec once = {.it_value = {0, 5000000}};
    if (timerfd_settime(t, 0, &once, NULL) != 0)
        return 2;
    usleep(30000);
    if (read(t, &v, 8) != 8)
        return 2;
    printf("one-shot: %llu\n", (unsigned long long)v);
    return 0;
}
