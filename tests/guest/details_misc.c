/* sysinfo's uptime counts a started second whole (Linux rounds up, while
 * /proc/uptime truncates to hundredths); a thread's /proc/PID/task/TID
 * directory has no timens_offsets (a process's file) and no task/. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

int main(void) {
    FILE *f = fopen("/proc/uptime", "r");
    double up = 0;
    if (!f || fscanf(f, "%lf", &up) != 1)
        return 2;
    fclose(f);
    struct sysinfo si;
    if (sysinfo(&si) != 0)
        return 2;
    /* /proc/uptime was read first and the clock only goes forward. */
    long up_ceil = (long)up + (up > (double)(long)up);
    printf("sysinfo uptime >= ceil(/proc/uptime): %s\n", si.uptime >= up_ceil ? "yes" : "no");

    char path[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/timens_offsets", gettid());
    printf("task timens_offsets: %s\n", access(path, F_OK) == 0 ? "exists" : strerrorname_np(errno));
    snprintf(path, sizeof path, "/proc/self/task/%d/task", gettid());
    printf("task task: %s\n", access(path, F_OK) == 0 ? "exists" : strerrorname_np(errno));
    printf("process timens_offsets: %s\n",
           access("/proc/self/timens_offsets", F_OK) == 0 ? "exists" : strerrorname_np(errno));
    snprintf(path, sizeof path, "/proc/self/task/%d", gettid());
    DIR *d = opendir(path);
    int listed = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strcmp(e->d_name, "timens_offsets") || !strcmp(e->d_name, "task"))
            listed++;
    if (d)
        closedir(d);
    printf("task dir lists timens_offsets or task: %d\n", listed);
    return 0;
}
