/* poll(2) and read(2) on standard input at end of file: a pipe whose
 * writer is gone polls hung up (POLLHUP, not POLLIN), /dev/null polls
 * readable; both read 0. Under ruml standard input is the console, a
 * pass-through of ruml's own fd 0 (UML's `fd:0` console channel meets
 * this), and must poll as Linux polls that descriptor. */
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    for (int i = 0; i < 2; i++) {
        struct pollfd p = {0, POLLIN, 0};
        int n = poll(&p, 1, 60000);
        printf("poll %d in=%d hup=%d\n", n, !!(p.revents & POLLIN), !!(p.revents & POLLHUP));
        char c;
        printf("read %d\n", (int)read(0, &c, 1));
    }
    return 0;
}
