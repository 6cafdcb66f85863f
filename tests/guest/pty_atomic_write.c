/* Writes to a terminal do not interleave: three processes each write
 * 200,000 bytes of their own letter to one pty slave with a single
 * write(2), more than the pty holds, so each writer waits for room part
 * way; Linux's tty write lock keeps the output to the first writer
 * until its write returns. The parent reads the master and prints how
 * many runs of one letter it saw and how many bytes of each: the same
 * natively and under ruml whatever order the writers run in. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define WRITERS 3
#define EACH 200000

int main(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) return 1;
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    if (s < 0) return 2;
    struct termios t;
    tcgetattr(s, &t);
    cfmakeraw(&t);
    tcsetattr(s, TCSANOW, &t);
    pid_t kids[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char *b = malloc(EACH);
            if (!b) _exit(3);
            memset(b, 'a' + i, EACH);
            ssize_t n = write(s, b, EACH);
            _exit(n == EACH ? 0 : 4);
        }
    }
    long count[WRITERS] = {0};
    int runs = 0, last = -1;
    long total = 0;
    char buf[4096];
    while (total < (long)WRITERS * EACH) {
        ssize_t n = read(m, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t k = 0; k < n; k++) {
            int c = buf[k] - 'a';
            if (c < 0 || c >= WRITERS) {
                printf("stray byte %d\n", buf[k]);
                continue;
            }
            count[c]++;
            if (c != last) runs++;
            last = c;
        }
        total += n;
        usleep(200); /* a slow reader: the writers fill the pty */
    }
    int ok = 1;
    for (int i = 0; i < WRITERS; i++) {
        int st = 0;
        waitpid(kids[i], &st, 0);
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    printf("writers ok: %d\n", ok);
    printf("runs: %d\n", runs);
    for (int i = 0; i < WRITERS; i++) printf("%c: %ld\n", 'a' + i, count[i]);
    return 0;
}
