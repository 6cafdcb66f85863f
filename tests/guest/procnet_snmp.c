/* /proc/net/snmp's TCP and UDP counters, compared with the host, in a
 * fresh network namespace (so no other traffic counts; needs root
 * natively): a connection on lo (one active open, one passive, both ends
 * established), a connect refused (an active open and an attempt
 * failed), three datagrams sent and received and one to a port no
 * socket has. Prints the Tcp and Udp header lines and the changes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

struct mib {
    char tcp_head[512], udp_head[512];
    long tcp[15], udp[9];
};

static int read_mib(struct mib *m) {
    FILE *f = fopen("/proc/net/snmp", "r");
    if (!f)
        return -1;
    char line[1024];
    int tcp_seen = 0, udp_seen = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Tcp:", 4)) {
            if (!tcp_seen++) {
                snprintf(m->tcp_head, sizeof m->tcp_head, "%.500s", line);
            } else {
                char *p = line + 4;
                for (int i = 0; i < 15; i++)
                    m->tcp[i] = strtol(p, &p, 10);
            }
        } else if (!strncmp(line, "Udp:", 4)) {
            if (!udp_seen++) {
                snprintf(m->udp_head, sizeof m->udp_head, "%.500s", line);
            } else {
                char *p = line + 4;
                for (int i = 0; i < 9; i++)
                    m->udp[i] = strtol(p, &p, 10);
            }
        }
    }
    fclose(f);
    return tcp_seen == 2 && udp_seen == 2 ? 0 : -1;
}

static struct sockaddr_in lo(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (unshare(CLONE_NEWNET) != 0) {
        printf("unshare: %s\n", strerrorname_np(errno));
        return 1;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        return 2;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        return 3;
    close(s);
    struct mib a, b;
    if (read_mib(&a) != 0) {
        printf("no /proc/net/snmp\n");
        return 4;
    }
    printf("%s%s", a.tcp_head, a.udp_head);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in la = lo(5555);
    if (bind(l, (void *)&la, sizeof la) || listen(l, 4))
        return 5;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (void *)&la, sizeof la))
        return 6;
    int srv = accept(l, NULL, NULL);
    if (srv < 0)
        return 7;
    int r = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in closed = lo(5556);
    errno = 0;
    printf("connect to a closed port: %s\n",
           connect(r, (void *)&closed, sizeof closed) == 0 ? "works" : strerrorname_np(errno));

    int u = socket(AF_INET, SOCK_DGRAM, 0), v = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = lo(5557), none = lo(5558);
    if (bind(u, (void *)&ua, sizeof ua))
        return 8;
    char buf[16];
    for (int i = 0; i < 3; i++)
        sendto(v, "x", 1, 0, (void *)&ua, sizeof ua);
    for (int i = 0; i < 3; i++)
        recv(u, buf, sizeof buf, 0);
    sendto(v, "y", 1, 0, (void *)&none, sizeof none);

    if (read_mib(&b) != 0)
        return 9;
    printf("Tcp ActiveOpens +%ld PassiveOpens +%ld AttemptFails +%ld CurrEstab %ld\n",
           b.tcp[4] - a.tcp[4], b.tcp[5] - a.tcp[5], b.tcp[6] - a.tcp[6], b.tcp[8]);
    printf("Udp InDatagrams +%ld NoPorts +%ld OutDatagrams +%ld\n", b.udp[0] - a.udp[0],
           b.udp[1] - a.udp[1], b.udp[3] - a.udp[3]);
    close(c);
    close(srv);
    close(l);
    return 0;
}
