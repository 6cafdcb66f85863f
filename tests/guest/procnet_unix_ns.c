/* /proc/net/unix lists the reader's network namespace's sockets only:
 * a socket bound in the parent's namespace and one bound in a child's
 * new one (unshare CLONE_NEWNET) are each seen from their own side,
 * not from the other. Abstract names are per namespace too (the child
 * binds the parent's abstract name again and cannot connect to the
 * parent's), filesystem names are not (the child connects to the
 * parent's path). Needs CAP_SYS_ADMIN (root) natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char outer[108], inner[108], abstract[108];

static struct sockaddr_un abstract_addr(socklen_t *len) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(abstract);
    memcpy(a.sun_path + 1, abstract, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    return a;
}

static int bound_abstract(void) {
    socklen_t len;
    struct sockaddr_un a = abstract_addr(&len);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, len) != 0 || listen(s, 1) != 0) {
        printf("abstract bind: %s\n", strerror(errno));
        return -1;
    }
    return s;
}

static const char *connect_result(const struct sockaddr_un *a, socklen_t len) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int r = connect(s, (const struct sockaddr *)a, len);
    const char *what = r == 0 ? "connected" : strerror(errno);
    close(s);
    return what;
}

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
    snprintf(abstract, sizeof abstract, "ruml-unixns-abstract-%d", getpid());
    int a = bound(outer);
    int pa = bound_abstract();
    {
        socklen_t len;
        struct sockaddr_un an = abstract_addr(&len);
        printf("parent connects to its abstract name: %s\n", connect_result(&an, len));
    }
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
        socklen_t len;
        struct sockaddr_un an = abstract_addr(&len);
        printf("child connects to the parent's abstract name: %s\n", connect_result(&an, len));
        int ca = bound_abstract();
        printf("child binds the same abstract name: %s\n", ca >= 0 ? "yes" : "no");
        printf("child connects to its abstract name: %s\n", connect_result(&an, len));
        struct sockaddr_un ap = {.sun_family = AF_UNIX};
        snprintf(ap.sun_path, sizeof ap.sun_path, "%s", outer);
        printf("child connects to the parent's path: %s\n",
               connect_result(&ap, (socklen_t)sizeof ap));
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
    close(pa);
    unlink(outer);
    unlink(inner);
    printf("child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
