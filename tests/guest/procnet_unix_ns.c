/* /proc/net/unix lists the reader's network namespace's sockets only:
 * a socket bound in the parent's namespace and one bound in a child's
 * new one (unshare CLONE_NEWNET) are each seen from their own side,
 * not from the other. Needs CAP_SYS_ADMIN (root) natively. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char outer[108], inner[108];

static int bound(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1) != 0) {
        perror("bind");
        exit(2);
    }
    return s;
}

static int listed(const char *path) {
    FILE *f = fopen("/proc/net/unix", "r");
    char line[512];
    int found = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        size_t n = strlen(line), m = strlen(path);
        if (n >= m && strcmp(line + n - m, path) == 0)
            found = 1;
    }
    fclose(f);
    return found;
}

static void report(const char *who) {
    printf("%s sees outer: %s, inner: %s\n", who, listed(outer) ? "yes" : "no",
           listed(inner) ? "yes" : "no");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(outer, sizeof outer, "/tmp/ruml-unixns-outer-%d", getpid());
    snprintf(inner, sizeof inner, "/tmp/ruml-unixns-inner-%d", getpid());
    int a = bound(outer);
    int go[2], done[2];
    if (pipe(go) || pipe(done))
        return 2;
    pid_t c = fork();
    if (c == 0) {
        if (unshare(CLONE_NEWNET) != 0) {
            printf("unshare failed\n");
            _exit(3);
        }
        int b = bound(inner);
        report("child (new netns)");
        if (write(done[1], "x", 1) != 1)
            _exit(4);
        char x;
        if (read(go[0], &x, 1) != 1)
            _exit(5);
        close(b);
        _exit(0);
    }
    char x;
    if (read(done[0], &x, 1) != 1) {
        printf("child failed\n");
    } else {
        report("parent");
    }
    if (write(go[1], "x", 1) != 1)
        return 2;
    int st;
    waitpid(c, &st, 0);
    close(a);
    unlink(outer);
    unlink(inner);
    printf("child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
