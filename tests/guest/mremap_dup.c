/* mremap with an old size of 0: a second mapping of the same pages, for
 * shared mappings only (shared anonymous memory, memfd, System V shared
 * memory; MREMAP_MAYMOVE needed, EINVAL on private mappings, EFAULT on
 * unmapped memory), with MREMAP_FIXED, at an offset, past the object's end
 * (SIGBUS). Then /dev/zero in /proc/self/maps: a private mapping is named
 * "/dev/zero" with the device and inode of /dev/zero and the mmap offset,
 * a shared one "/dev/zero (deleted)" with an inode of its own. Prints
 * facts only (no addresses). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L

static const char *res(void *p) { return p == MAP_FAILED ? strerrorname_np(errno) : "ok"; }

/* The maps line of the area holding `p`: offset, device, inode, name. */
struct area {
    unsigned long start, end, off, ino;
    unsigned maj, min;
    char perms[8], name[256];
};

static int find_area(void *p, struct area *a) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        struct area x = {0};
        int n = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %n", &x.start, &x.end, x.perms, &x.off, &x.maj,
                   &x.min, &x.ino, &n) < 7)
            continue;
        snprintf(x.name, sizeof x.name, "%s", line + n);
        x.name[strcspn(x.name, "\n")] = 0;
        if ((unsigned long)p >= x.start && (unsigned long)p < x.end) {
            *a = x;
            found = 1;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* Lines of maps overlapping [p, p+len). */
static int areas_in(char *p, long len) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < (unsigned long)p + len &&
            e > (unsigned long)p)
            n++;
    }
    if (f)
        fclose(f);
    return n;
}

/* Touches p in a child: "ok" or the signal that killed it. */
static const char *touch_in_child(volatile char *p) {
    static char buf[32];
    pid_t c = fork();
    if (c == 0) {
        p[0] = 1;
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "signal %s", sigabbrev_np(WTERMSIG(st)));
    else
        snprintf(buf, sizeof buf, "ok");
    return buf;
}

static void dup_errors(void) {
    char *priv = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *sh = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    errno = 0;
    printf("private, old 0, MAYMOVE       %s\n", res(mremap(priv, 0, PG, MREMAP_MAYMOVE)));
    printf("shared, old 0, no MAYMOVE     %s\n", res(mremap(sh, 0, PG, 0)));
    printf("shared, old 0, new 0          %s\n", res(mremap(sh, 0, 0, MREMAP_MAYMOVE)));
    munmap(priv, 2 * PG);
    printf("unmapped, old 0, MAYMOVE      %s\n", res(mremap(priv, 0, PG, MREMAP_MAYMOVE)));
    printf("shared, old 0, unaligned      %s\n", res(mremap(sh + 1, 0, PG, MREMAP_MAYMOVE)));
    printf("shared, old 0, DONTUNMAP      %s\n",
           res(mremap(sh, 0, PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP)));
    munmap(sh, 2 * PG);
}

static void dup_anon(void) {
    char *a = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    strcpy(a, "page0");
    strcpy(a + 2 * PG, "page2");
    char *d = mremap(a, 0, 4 * PG, MREMAP_MAYMOVE);
    printf("anon dup                      %s, moved %d\n", res(d), d != a);
    printf("anon dup reads                %s %s\n", d, d + 2 * PG);
    strcpy(d + PG, "via-dup");
    printf("original sees dup's write     %s\n", a + PG);
    struct area x, y;
    if (find_area(a, &x) && find_area(d, &y))
        printf("maps: original %s off %lx, dup %s off %lx, same inode %d\n", x.perms, x.off,
               y.perms, y.off, x.ino == y.ino);
    /* At an offset: the dup starts at the object's page 2. */
    char *o = mremap(a + 2 * PG, 0, PG, MREMAP_MAYMOVE);
    printf("dup at offset                 %s, reads %s\n", res(o), o == MAP_FAILED ? "-" : o);
    if (o != MAP_FAILED && find_area(o, &y))
        printf("maps: dup at offset off %lx, same inode %d\n", y.off, x.ino == y.ino);
    /* Past the object's end: SIGBUS there. */
    char *big = mremap(a, 0, 8 * PG, MREMAP_MAYMOVE);
    printf("dup larger than object        %s\n", res(big));
    if (big != MAP_FAILED) {
        printf("  page 3 of it                %s\n", touch_in_child(big + 3 * PG));
        printf("  page 5 of it                %s\n", touch_in_child(big + 5 * PG));
    }
    /* MREMAP_FIXED to a chosen place. */
    char *dst = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *f = mremap(a, 0, 2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    printf("dup FIXED                     %s, at dst %d, reads %s\n", res(f), f == dst,
           f == MAP_FAILED ? "-" : f);
    /* A fork child's writes through the dup reach the parent's original. */
    pid_t c = fork();
    if (c == 0) {
        strcpy(d + 3 * PG, "child");
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("child's write via dup         %s\n", a + 3 * PG);
    /* The original unmapped: the dup keeps the pages. */
    munmap(a, 4 * PG);
    printf("dup after original unmapped   %s %s\n", d, d + PG);
}

static void dup_memfd(void) {
    int fd = memfd_create("dup", 0);
    if (fd < 0 || ftruncate(fd, 2 * PG)) {
        perror("memfd");
        exit(1);
    }
    char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *d = mremap(m, 0, 2 * PG, MREMAP_MAYMOVE);
    printf("memfd dup                     %s\n", res(d));
    if (d == MAP_FAILED)
        return;
    strcpy(d + PG, "memfd-dup");
    char buf[16] = {0};
    pread(fd, buf, 9, PG);
    printf("memfd file sees dup's write   %s, original %s\n", buf, m + PG);
    char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    printf("memfd private, old 0          %s\n", res(mremap(p, 0, PG, MREMAP_MAYMOVE)));
    close(fd);
}

static void dup_sysv(void) {
    int id = shmget(IPC_PRIVATE, 2 * PG, IPC_CREAT | 0600);
    if (id < 0) {
        printf("shmget %s\n", strerrorname_np(errno));
        return;
    }
    char *s = shmat(id, NULL, 0);
    strcpy(s, "sysv");
    char *d = mremap(s, 0, 2 * PG, MREMAP_MAYMOVE);
    printf("sysv dup                      %s, reads %s\n", res(d), d == MAP_FAILED ? "-" : d);
    struct shmid_ds ds;
    shmctl(id, IPC_STAT, &ds);
    printf("sysv nattch after dup         %lu\n", (unsigned long)ds.shm_nattch);
    if (d != MAP_FAILED)
        munmap(d, 2 * PG);
    shmctl(id, IPC_STAT, &ds);
    printf("sysv nattch after unmap       %lu\n", (unsigned long)ds.shm_nattch);
    shmdt(s);
    shmctl(id, IPC_RMID, NULL);
}

static void dev_zero(void) {
    int fd = open("/dev/zero", O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        perror("/dev/zero");
        exit(1);
    }
    char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 3 * PG);
    char *s = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    struct area a;
    if (find_area(p, &a))
        printf("private /dev/zero: %s off %lx name \"%s\" dev,ino of /dev/zero %d\n", a.perms,
               a.off, a.name, makedev(a.maj, a.min) == st.st_dev && a.ino == st.st_ino);
    if (find_area(s, &a))
        printf("shared /dev/zero: %s off %lx name \"%s\" ino of /dev/zero %d\n", a.perms, a.off,
               a.name, a.ino == st.st_ino);
    strcpy(p, "private");
    pid_t c = fork();
    if (c == 0) {
        strcpy(p, "child");
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("private /dev/zero after child  %s\n", p);
    /* Grown by mremap (and so moved): one area, still named /dev/zero. */
    char *q = mremap(p, 2 * PG, 4 * PG, MREMAP_MAYMOVE);
    if (q != MAP_FAILED && find_area(q + 3 * PG, &a))
        printf("private /dev/zero grown: %s off %lx name \"%s\", areas %d\n", a.perms, a.off,
               a.name, areas_in(q, 4 * PG));
    /* Beside anonymous memory: two areas, not merged. */
    char *r = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *z = mmap(r + 2 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    printf("anon + /dev/zero side by side %s, areas %d\n", res(z), areas_in(r, 4 * PG));
    munmap(r + 3 * PG, PG);
    if (find_area(r + 2 * PG, &a))
        printf("after a partial unmap: off %lx name \"%s\"\n", a.off, a.name);
    close(fd);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    dup_errors();
    dup_anon();
    dup_memfd();
    dup_sysv();
    dev_zero();
    return 0;
}
