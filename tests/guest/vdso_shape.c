/*
 * vdso_shape: the vDSO as a program finds it. AT_SYSINFO_EHDR points at a
 * valid ELF shared object mapped as [vdso], with [vvar] just below it in
 * /proc/self/maps; its dynamic symbol table exports the LINUX_2.6 symbols
 * glibc looks up (found here as dlvsym would: hash table, version
 * definitions); calling them directly agrees with the system calls; the
 * vvar page cannot be made writable or written by the kernel on our
 * behalf; fork keeps both; the pair can be moved together with mremap (and
 * still works) and unmapped. With the argument "addr" it prints only the
 * image's address (the test checks it is randomized per exec); with
 * "loop" it reads CLOCK_MONOTONIC 10000 times through glibc.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int ok)
{
    printf("%s: %s\n", what, ok ? "ok" : "FAIL");
    if (!ok)
        failures++;
}

struct image {
    const Elf64_Ehdr *eh;
    long bias;
    const Elf64_Sym *sym;
    const char *str;
    unsigned nsym;
    const Elf64_Half *versym;
    const Elf64_Verdef *verdef;
};

static int open_image(struct image *im, unsigned long base)
{
    memset(im, 0, sizeof *im);
    im->eh = (const Elf64_Ehdr *)base;
    const Elf64_Ehdr *eh = im->eh;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_type != ET_DYN || eh->e_machine != EM_X86_64 || eh->e_phentsize != sizeof(Elf64_Phdr))
        return 0;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
    const Elf64_Dyn *dyn = NULL;
    int have_load = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !have_load) {
            im->bias = (long)base - (long)ph[i].p_vaddr;
            have_load = 1;
        }
        if (ph[i].p_type == PT_DYNAMIC)
            dyn = (const Elf64_Dyn *)(ph[i].p_vaddr);
    }
    if (!have_load || !dyn)
        return 0;
    dyn = (const Elf64_Dyn *)((long)dyn + im->bias);
    const Elf64_Word *hash = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        unsigned long p = dyn->d_un.d_ptr + im->bias;
        switch (dyn->d_tag) {
        case DT_SYMTAB: im->sym = (const Elf64_Sym *)p; break;
        case DT_STRTAB: im->str = (const char *)p; break;
        case DT_HASH: hash = (const Elf64_Word *)p; break;
        case DT_VERSYM: im->versym = (const Elf64_Half *)p; break;
        case DT_VERDEF: im->verdef = (const Elf64_Verdef *)p; break;
        }
    }
    if (!im->sym || !im->str || !hash)
        return 0;
    im->nsym = hash[1];
    return 1;
}

/* The version name of version index `ndx`. */
static const char *version_name(const struct image *im, unsigned ndx)
{
    const Elf64_Verdef *d = im->verdef;
    while (d) {
        if ((d->vd_ndx & 0x7fff) == ndx) {
            const Elf64_Verdaux *a = (const Elf64_Verdaux *)((const char *)d + d->vd_aux);
            return im->str + a->vda_name;
        }
        if (!d->vd_next)
            break;
        d = (const Elf64_Verdef *)((const char *)d + d->vd_next);
    }
    return NULL;
}

static void *vsym(const struct image *im, const char *name, const char *version)
{
    for (unsigned i = 1; i < im->nsym; i++) {
        const Elf64_Sym *s = &im->sym[i];
        if (strcmp(im->str + s->st_name, name) || s->st_shndx == SHN_UNDEF)
            continue;
        if (ELF64_ST_TYPE(s->st_info) != STT_FUNC)
            continue;
        if (im->versym && im->verdef) {
            const char *v = version_name(im, im->versym[i] & 0x7fff);
            if (!v || strcmp(v, version))
                continue;
        }
        return (void *)(s->st_value + im->bias);
    }
    return NULL;
}

struct area { unsigned long start, end; char perms[5]; int found; };

static void find_areas(struct area *vvar, struct area *vdso)
{
    memset(vvar, 0, sizeof *vvar);
    memset(vdso, 0, sizeof *vdso);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        struct area a = {0};
        if (sscanf(line, "%lx-%lx %4s", &a.start, &a.end, a.perms) != 3)
            continue;
        a.found = 1;
        if (strstr(line, "[vvar]"))
            *vvar = a;
        if (strstr(line, "[vdso]"))
            *vdso = a;
    }
    if (f)
        fclose(f);
}

typedef int (*gettime_fn)(clockid_t, struct timespec *);

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

static int agrees(gettime_fn fn)
{
    for (int i = 0; i < 100; i++) {
        struct timespec a, b, c;
        if (fn(CLOCK_MONOTONIC, &a) || syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b) ||
            fn(CLOCK_MONOTONIC, &c))
            return 0;
        if (ns(b) < ns(a) || ns(c) < ns(b))
            return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    unsigned long base = getauxval(AT_SYSINFO_EHDR);
    if (argc > 1 && !strcmp(argv[1], "addr")) {
        printf("%lx\n", base);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "loop")) {
        /* Reads through glibc only: under RUML_STRACE none may appear. */
        struct timespec t, last = {0, 0};
        int ok = 1;
        for (int i = 0; i < 10000; i++) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            ok &= ns(t) >= ns(last);
            last = t;
        }
        printf("loop: %s\n", ok ? "ok" : "FAIL");
        return !ok;
    }
    check("AT_SYSINFO_EHDR present", base != 0);
    if (!base) {
        printf("result: FAIL\n");
        return 1;
    }
    struct image im;
    check("ELF header valid", open_image(&im, base));
    check("ELF has version definitions", im.versym && im.verdef);
    const char *names[] = {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
                           "__vdso_getcpu", "__vdso_clock_getres", "clock_gettime",
                           "gettimeofday", "time", "getcpu", "clock_getres"};
    struct area vvar, vdso;
    find_areas(&vvar, &vdso);
    check("[vdso] in maps", vdso.found && vdso.start == base);
    check("[vvar] in maps just below", vvar.found && vvar.end == vdso.start);
    check("[vdso] r-xp", !strcmp(vdso.perms, "r-xp"));
    check("[vvar] r--p", !strcmp(vvar.perms, "r--p"));
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) {
        void *p = vsym(&im, names[i], "LINUX_2.6");
        char what[80];
        snprintf(what, sizeof what, "symbol %s@LINUX_2.6", names[i]);
        check(what, p && (unsigned long)p >= vdso.start && (unsigned long)p < vdso.end);
    }
    check("no symbol of another version", vsym(&im, "__vdso_time", "LINUX_9.9") == NULL);

    gettime_fn gt = (gettime_fn)vsym(&im, "__vdso_clock_gettime", "LINUX_2.6");
    check("__vdso_clock_gettime agrees with the system call", gt && agrees(gt));
    {
        long (*tm)(long *) = (long (*)(long *))vsym(&im, "__vdso_time", "LINUX_2.6");
        long t0 = syscall(SYS_time, NULL), out = 0;
        long t1 = tm ? tm(&out) : -1;
        check("__vdso_time", t1 == out && t1 >= t0 && t1 <= t0 + 2);
    }
    {
        int (*gc)(unsigned *, unsigned *, void *) =
            (int (*)(unsigned *, unsigned *, void *))vsym(&im, "__vdso_getcpu", "LINUX_2.6");
        unsigned cpu = 9999, node = 9999;
        check("__vdso_getcpu", gc && gc(&cpu, &node, NULL) == 0 &&
                                   cpu < (unsigned)sysconf(_SC_NPROCESSORS_CONF) && node < 64);
    }
    {
        int (*gr)(clockid_t, struct timespec *) =
            (gettime_fn)vsym(&im, "__vdso_clock_getres", "LINUX_2.6");
        struct timespec a = {0, 0}, b = {0, 0};
        check("__vdso_clock_getres", gr && gr(CLOCK_MONOTONIC_COARSE, &a) == 0 &&
                                         syscall(SYS_clock_getres, CLOCK_MONOTONIC_COARSE, &b) == 0 &&
                                         a.tv_nsec == b.tv_nsec && a.tv_sec == b.tv_sec);
    }

    /* The data page stays read-only. */
    errno = 0;
    check("mprotect([vvar], RW) is EACCES",
          mprotect((void *)vvar.start, 4096, PROT_READ | PROT_WRITE) == -1 && errno == EACCES);
    errno = 0;
    check("mprotect([vvar], RX) is EACCES",
          mprotect((void *)vvar.start, 4096, PROT_READ | PROT_EXEC) == -1 && errno == EACCES);
    {
        int p[2];
        pipe(p);
        write(p[1], "x", 1);
        errno = 0;
        check("read into [vvar] is EFAULT", read(p[0], (void *)vvar.start, 1) == -1 && errno == EFAULT);
        check("write from [vvar] works", write(p[1], (void *)vvar.start, 16) == 16);
        close(p[0]);
        close(p[1]);
    }
    errno = 0;
    check("mremap growing [vdso] fails",
          mremap((void *)vdso.start, vdso.end - vdso.start, vdso.end - vdso.start + 4096,
                 MREMAP_MAYMOVE) == MAP_FAILED);

    /* fork keeps both; a child's write to its own [vdso] copy stays its own. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct area cv, cd;
        find_areas(&cv, &cd);
        int ok = cv.start == vvar.start && cd.start == vdso.start && agrees(gt);
        struct timespec a, b;
        gt(CLOCK_MONOTONIC, &a);
        usleep(20000);
        gt(CLOCK_MONOTONIC, &b);
        ok = ok && ns(b) - ns(a) >= 20000000;
        /* The image may be made writable (a debugger does); the write
           makes a private copy. */
        unsigned char *last = (unsigned char *)cd.end - 1;
        ok = ok && mprotect((void *)cd.start, cd.end - cd.start, PROT_READ | PROT_WRITE | PROT_EXEC) == 0;
        if (ok)
            *last = 0xcc;
        _exit(ok ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    check("fork keeps [vvar] and [vdso], and they work", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("the child's write did not reach us", *((unsigned char *)vdso.end - 1) == 0);

    /* Moving the pair together (in a child: glibc keeps pointers into it). */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        unsigned long span = vdso.end - vvar.start;
        void *to = mmap(NULL, span + 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        unsigned long nv = (unsigned long)to + 4096;
        void *a = mremap((void *)vvar.start, vvar.end - vvar.start, vvar.end - vvar.start,
                         MREMAP_MAYMOVE | MREMAP_FIXED, (void *)nv);
        void *b = mremap((void *)vdso.start, vdso.end - vdso.start, vdso.end - vdso.start,
                         MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(nv + (vvar.end - vvar.start)));
        int ok = a == (void *)nv && b != MAP_FAILED;
        struct area cv, cd;
        find_areas(&cv, &cd);
        ok = ok && cv.start == nv && cd.start == (unsigned long)b;
        gettime_fn moved = (gettime_fn)((unsigned long)gt - vdso.start + (unsigned long)b);
        ok = ok && agrees(moved);
        /* And unmapped: gone from maps. */
        ok = ok && munmap((void *)cv.start, cd.end - cv.start) == 0;
        find_areas(&cv, &cd);
        ok = ok && !cv.found && !cd.found;
        _exit(ok ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    check("mremap moves them (and they still work); munmap removes them",
          WIFEXITED(st) && WEXITSTATUS(st) == 0);

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
