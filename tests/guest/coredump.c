/* Core dumps: children killed by SIGSEGV and SIGABRT with RLIMIT_CORE
 * unlimited leave an ELF core file ("core" in the working directory, the
 * default core_pattern) and a wait status with the core bit; with
 * RLIMIT_CORE 0, or after PR_SET_DUMPABLE 0, neither. argv[1] is the
 * directory to work in; the SIGSEGV child's core is left there for the
 * test to open with gdb (level1 -> level2 -> crash_here). Prints facts. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int *volatile nowhere;

__attribute__((noinline)) static void crash_here(int x) {
    *nowhere = x;
}

__attribute__((noinline)) static void level2(int x) {
    crash_here(x + 1);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void level1(int x) {
    level2(x * 2);
    __asm__ volatile("" ::: "memory");
}

static void set_core_limit(rlim_t v) {
    struct rlimit r = {v, v};
    if (setrlimit(RLIMIT_CORE, &r))
        perror("setrlimit");
}

/* What is in ./core now: absent, or its type, mode and ELF kind. */
static void describe_core(const char *what) {
    struct stat st;
    if (stat("core", &st)) {
        printf("%s: no core file\n", what);
        return;
    }
    Elf64_Ehdr eh = {0};
    int fd = open("core", O_RDONLY);
    int n = fd >= 0 ? (int)read(fd, &eh, sizeof eh) : -1;
    if (fd >= 0)
        close(fd);
    int elf = n == (int)sizeof eh && !memcmp(eh.e_ident, ELFMAG, SELFMAG);
    printf("%s: core file: regular %d, mode %o, ELF %d, ET_CORE %d, x86_64 %d, program headers %d\n",
           what, S_ISREG(st.st_mode), st.st_mode & 0777, elf, elf && eh.e_type == ET_CORE,
           elf && eh.e_machine == EM_X86_64, elf && eh.e_phnum > 1);
}

static void run(const char *what, void (*child)(void), int keep) {
    unlink("core");
    pid_t p = fork();
    if (p == 0) {
        child();
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    printf("%s: signaled %d, signal %d, core dumped %d\n", what, WIFSIGNALED(st),
           WIFSIGNALED(st) ? WTERMSIG(st) : 0, WIFSIGNALED(st) && WCOREDUMP(st));
    describe_core(what);
    if (!keep)
        unlink("core");
}

static void segv_child(void) {
    set_core_limit(RLIM_INFINITY);
    level1(20);
}

static void abort_child(void) {
    set_core_limit(RLIM_INFINITY);
    abort();
}

static void no_limit_child(void) {
    set_core_limit(0);
    level1(1);
}

static void undumpable_child(void) {
    set_core_limit(RLIM_INFINITY);
    prctl(PR_SET_DUMPABLE, 0);
    printf("dumpable after PR_SET_DUMPABLE 0: %d\n", prctl(PR_GET_DUMPABLE));
    fflush(stdout);
    level1(1);
}

static void term_child(void) {
    set_core_limit(RLIM_INFINITY);
    raise(SIGTERM);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || chdir(argv[1])) {
        perror("chdir");
        return 2;
    }
    printf("dumpable: %d\n", prctl(PR_GET_DUMPABLE));
    run("abort", abort_child, 0);
    run("RLIMIT_CORE 0", no_limit_child, 0);
    run("undumpable", undumpable_child, 0);
    run("SIGTERM", term_child, 0);
    run("segv", segv_child, 1);
    return 0;
}
