/* /proc/net/tcp and udp, compared with the host: each socket's line
 * shows its owner (sk_uid, the creator's fsuid; an accepted connection
 * takes its listener's), and a reader sees only its own network
 * namespace's sockets. Lines are found by this program's own ports, so
 * other sockets on the host do not matter. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int port_of(int fd) {
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    if (getsockname(fd, (struct sockaddr *)&a, &l) != 0) return -1;
    return ntohs(a.sin_port);
}

static int bound(int type, int listening) {
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    if (listening && listen(fd, 4) != 0) return -1;
    return fd;
}

/* The uids of the lines of /proc/net/FILE whose local port is `port`,
 * comma-separated in line order, or "none". */
static void owners(const char *who, const char *file, int port) {
    char path[64], line[512], out[256] = "";
    snprintf(path, sizeof path, "/proc/net/%s", file);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: cannot open %s\n", who, path);
        return;
    }
    while (fgets(line, sizeof line, f)) {
        char local[64], rem[64];
        unsigned uid;
        if (sscanf(line, " %*[0-9]: %63s %63s %*x %*x:%*x %*x:%*x %*x %u", local, rem, &uid) != 3)
            continue;
        char *colon = strchr(local, ':');
        if (!colon || (int)strtol(colon + 1, NULL, 16) != port) continue;
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%u", out[0] ? "," : "", uid);
    }
    fclose(f);
    printf("%s: %s owners %s\n", who, file, out[0] ? out : "none");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) {
        printf("run as root\n");
        return 0;
    }
    int l = bound(SOCK_STREAM, 1);
    int lport = port_of(l);
    owners("root listener", "tcp", lport);
    /* A connection: the client's line is its creator's, the accepted
     * one the listener's, whoever connects. */
    int sv[2];
    if (pipe(sv) != 0) return 1;
    pid_t c = fork();
    if (c == 0) {
        if (setresgid(4321, 4321, 4321) || setresuid(4321, 4321, 4321)) _exit(1);
        int u = bound(SOCK_DGRAM, 0);
        int cfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(lport),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (u < 0 || cfd < 0 || connect(cfd, (struct sockaddr *)&a, sizeof a) != 0) _exit(2);
        int ports[2] = {port_of(u), port_of(cfd)};
        if (write(sv[1], ports, sizeof ports) != sizeof ports) _exit(3);
        pause();
        _exit(0);
    }
    int ports[2];
    if (read(sv[0], ports, sizeof ports) != sizeof ports) return 1;
    int a = accept(l, NULL, NULL);
    owners("udp of uid 4321", "udp", ports[0]);
    owners("client of uid 4321", "tcp", ports[1]);
    /* The listener's port: the listener and the accepted connection. */
    owners("listener and accepted", "tcp", lport);
    /* In a new network namespace none of these is seen; its own are. */
    pid_t n = fork();
    if (n == 0) {
        if (unshare(CLONE_NEWNET) != 0) {
            printf("unshare failed\n");
            _exit(1);
        }
        owners("new netns", "tcp", lport);
        owners("new netns", "udp", ports[0]);
        /* The same port as the first namespace's listener: no clash. */
        if (setresuid(555, 555, 555) != 0) _exit(1);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(lport)};
        if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof any) != 0 || listen(fd, 1) != 0) {
            printf("new netns: listen failed\n");
            _exit(1);
        }
        owners("new netns own listener", "tcp", lport);
        if (write(sv[1], &lport, sizeof lport) != sizeof lport) _exit(1);
        pause();
        _exit(0);
    }
    int np;
    if (read(sv[0], &np, sizeof np) != sizeof np) return 1;
    /* Back in the first namespace: the new one's listener is not shown. */
    owners("first netns again", "tcp", lport);
    kill(n, SIGKILL);
    kill(c, SIGKILL);
    waitpid(n, NULL, 0);
    waitpid(c, NULL, 0);
    close(a);
    return 0;
}
