/* ptrace(2), process_vm_readv/writev and /proc/PID/mem, as a tracer sees
 * them: the same output natively and under ruml (no pids or addresses are
 * printed). Only children are traced, so Yama's scope 1 allows it natively.
 *
 * Sections: TRACEME + exec, syscall stops (GET_SYSCALL_INFO, changing and
 * skipping a call), PEEK/POKE and breakpoints in text, fork/exit events,
 * SEIZE/INTERRUPT/LISTEN, single-step counting, FPU registers and register
 * sets, process_vm_readv/writev,
 * /proc/PID/mem, hostile requests. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/ptrace.h>

static const char *self;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static const char *ename(int e) {
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    default: return "other";
    }
}

static void status(const char *what, int st) {
    if (WIFEXITED(st))
        say("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        say("%s: killed by %d\n", what, WTERMSIG(st));
    else if (WIFSTOPPED(st))
        say("%s: stopped sig %d event %d\n", what, WSTOPSIG(st), st >> 16);
    else
        say("%s: status %#x\n", what, st);
}

static int wait_for(pid_t p, const char *what) {
    int st = 0;
    if (waitpid(p, &st, __WALL) != p)
        say("%s: waitpid failed: %s\n", what, ename(errno));
    status(what, st);
    return st;
}

/* ---- TRACEME + exec ------------------------------------------------- */
static void traceme_exec(void) {
    pid_t p = fork();
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        errno = 0;
        long r = ptrace(PTRACE_TRACEME, 0, 0, 0);
        say("traceme again: %ld %s\n", r, ename(errno));
        execl(self, self, "exit7", (char *)0);
        _exit(99);
    }
    wait_for(p, "traceme exec stop");
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long r = ptrace(PTRACE_GETSIGINFO, p, 0, &si);
    say("exec siginfo: %ld signo %d code %d\n", r, si.si_signo, si.si_code);
    ptrace(PTRACE_CONT, p, 0, 0);
    wait_for(p, "traceme exit");
}

/* ---- syscall stops -------------------------------------------------- */
static int syscall_stop(pid_t p) {
    int st;
    ptrace(PTRACE_SYSCALL, p, 0, 0);
    waitpid(p, &st, 0);
    return st;
}

static void syscalls(void) {
    pid_t p = fork();
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        syscall(SYS_getppid);
        long r = syscall(SYS_getuid); /* becomes getpid */
        if (r != getpid())
            _exit(20);
        syscall(SYS_exit_group, 99); /* skipped: returns ENOSYS */
        _exit(errno == ENOSYS ? 5 : 21);
    }
    wait_for(p, "sys first");
    ptrace(PTRACE_SETOPTIONS, p, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
    int seen_getppid = 0, seen_getuid = 0, seen_exit = 0;
    for (int i = 0; i < 200; i++) {
        int st = syscall_stop(p);
        if (!WIFSTOPPED(st)) {
            status("sys end", st);
            break;
        }
        if (WSTOPSIG(st) != (SIGTRAP | 0x80)) {
            status("sys other stop", st);
            continue;
        }
        struct ptrace_syscall_info info;
        memset(&info, 0, sizeof info);
        long n = ptrace(PTRACE_GET_SYSCALL_INFO, p, sizeof info, &info);
        struct user_regs_struct regs;
        ptrace(PTRACE_GETREGS, p, 0, &regs);
        unsigned long msg = 0;
        ptrace(PTRACE_GETEVENTMSG, p, 0, &msg);
        if (info.op == PTRACE_SYSCALL_INFO_ENTRY && info.entry.nr == SYS_getppid && !seen_getppid) {
            say("getppid entry: size %ld arch %#x orig_rax ok %d rax %lld msg %lu\n", n,
                info.arch, regs.orig_rax == SYS_getppid, (long long)regs.rax, msg);
            st = syscall_stop(p);
            memset(&info, 0, sizeof info);
            n = ptrace(PTRACE_GET_SYSCALL_INFO, p, sizeof info, &info);
            ptrace(PTRACE_GETEVENTMSG, p, 0, &msg);
            say("getppid exit: sig %#x op %d size %ld rval is parent %d error %d msg %lu\n",
                WSTOPSIG(st), info.op, n, info.exit.rval == getpid(), info.exit.is_error, msg);
            seen_getppid = 1;
        } else if (info.op == PTRACE_SYSCALL_INFO_ENTRY && info.entry.nr == SYS_getuid && !seen_getuid) {
            regs.orig_rax = SYS_getpid;
            ptrace(PTRACE_SETREGS, p, 0, &regs);
            st = syscall_stop(p);
            ptrace(PTRACE_GETREGS, p, 0, &regs);
            say("getuid became getpid: %d\n", (pid_t)regs.rax == p);
            seen_getuid = 1;
        } else if (info.op == PTRACE_SYSCALL_INFO_ENTRY && info.entry.nr == SYS_exit_group && !seen_exit) {
            say("exit_group arg %llu\n", (unsigned long long)info.entry.args[0]);
            regs.orig_rax = -1;
            ptrace(PTRACE_SETREGS, p, 0, &regs);
            st = syscall_stop(p);
            ptrace(PTRACE_GETREGS, p, 0, &regs);
            say("skipped exit_group: rax %lld\n", (long long)regs.rax);
            seen_exit = 1;
        }
    }
}

/* ---- PEEK/POKE and breakpoints -------------------------------------- */
static volatile long target = 0x1111;

__attribute__((noinline)) int probe(int x) {
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

static void peek_poke(int via_mem) {
    const char *tag = via_mem ? "mem" : "poke";
    pid_t p = fork();
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        int r = probe(4);
        say("%s child: target %#lx probe %d\n", tag, target, r);
        _exit(0);
    }
    wait_for(p, tag);
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, p, (void *)&target, 0);
    say("%s peek target %#lx %s\n", tag, v, ename(errno));
    ptrace(PTRACE_POKEDATA, p, (void *)&target, (void *)0x2222);
    /* A breakpoint at probe(): int3 over its first byte. */
    uintptr_t at = (uintptr_t)probe;
    errno = 0;
    long orig = ptrace(PTRACE_PEEKTEXT, p, (void *)at, 0);
    long bp = (orig & ~0xffL) | 0xcc;
    if (via_mem) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", p);
        int fd = open(path, O_RDWR);
        unsigned char cc = 0xcc;
        long w = pwrite(fd, &cc, 1, (off_t)at);
        long back = 0;
        long rd = pread(fd, &back, sizeof back, (off_t)at);
        say("mem write %ld read %ld same %d\n", w, rd, back == bp);
        errno = 0;
        w = pwrite(fd, &cc, 1, 0x1000);
        say("mem write unmapped: %ld %s\n", w, ename(errno));
        char buf[8];
        errno = 0;
        rd = pread(fd, buf, sizeof buf, 0x1000);
        say("mem read unmapped: %ld %s\n", rd, ename(errno));
        close(fd);
    } else {
        long r = ptrace(PTRACE_POKETEXT, p, (void *)at, (void *)bp);
        say("poketext %ld %s\n", r, ename(errno));
    }
    ptrace(PTRACE_CONT, p, 0, 0);
    int st = wait_for(p, "breakpoint");
    if (WIFSTOPPED(st)) {
        struct user_regs_struct regs;
        ptrace(PTRACE_GETREGS, p, 0, &regs);
        siginfo_t si;
        ptrace(PTRACE_GETSIGINFO, p, 0, &si);
        say("stopped at probe+%lld code %d\n", (long long)(regs.rip - at), si.si_code);
        errno = 0;
        long urip = ptrace(PTRACE_PEEKUSER, p, (void *)offsetof(struct user, regs.rip), 0);
        say("peekuser rip matches %d\n", (unsigned long long)urip == regs.rip);
        long dr7 = ptrace(PTRACE_PEEKUSER, p, (void *)offsetof(struct user, u_debugreg[7]), 0);
        say("dr7 %ld %s\n", dr7, ename(errno));
        errno = 0;
        ptrace(PTRACE_PEEKUSER, p, (void *)3, 0);
        say("peekuser unaligned: %s\n", ename(errno));
        ptrace(PTRACE_POKETEXT, p, (void *)at, (void *)orig);
        regs.rip = at;
        ptrace(PTRACE_SETREGS, p, 0, &regs);
        ptrace(PTRACE_CONT, p, 0, 0);
        wait_for(p, "after breakpoint");
    }
    /* Our own text never saw the int3 (copy-on-write). */
    say("parent probe %d\n", probe(2));
}

/* ---- fork and exit events ------------------------------------------- */
static void fork_events(void) {
    pid_t p = fork();
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        pid_t g = fork();
        if (g == 0)
            _exit(4);
        int st;
        waitpid(g, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) + 2 : 30);
    }
    wait_for(p, "fork events first");
    ptrace(PTRACE_SETOPTIONS, p, 0, PTRACE_O_TRACEFORK | PTRACE_O_TRACEEXIT);
    ptrace(PTRACE_CONT, p, 0, 0);
    char child_log[512] = "", gc_log[512] = "";
    pid_t gc = 0;
    int live = 2;
    for (int i = 0; i < 20 && live > 0; i++) {
        int st;
        pid_t w = waitpid(-1, &st, __WALL);
        if (w < 0)
            break;
        char *log = w == p ? child_log : gc_log;
        char line[128];
        if (WIFEXITED(st)) {
            snprintf(line, sizeof line, " exited %d;", WEXITSTATUS(st));
            live--;
        } else if (WIFSIGNALED(st)) {
            snprintf(line, sizeof line, " killed %d;", WTERMSIG(st));
            live--;
        } else {
            int ev = st >> 16;
            unsigned long msg = 0;
            ptrace(PTRACE_GETEVENTMSG, w, 0, &msg);
            if (ev == PTRACE_EVENT_FORK) {
                gc = (pid_t)msg;
                snprintf(line, sizeof line, " fork event;");
            } else if (ev == PTRACE_EVENT_EXIT) {
                snprintf(line, sizeof line, " exit event status %#lx;", msg);
            } else {
                snprintf(line, sizeof line, " stop sig %d event %d;", WSTOPSIG(st), ev);
            }
            int sig = (ev == 0 && WSTOPSIG(st) != SIGSTOP) ? WSTOPSIG(st) : 0;
            ptrace(PTRACE_CONT, w, 0, sig);
        }
        strncat(log, line, 511 - strlen(log));
        if (w != p && gc && w != gc)
            say("unexpected pid reported\n");
    }
    say("child:%s\n", child_log);
    say("grandchild:%s\n", gc_log);
}

/* ---- SEIZE, INTERRUPT, LISTEN --------------------------------------- */
static void seize(void) {
    int pfd[2];
    if (pipe(pfd))
        return;
    pid_t p = fork();
    if (p == 0) {
        char c;
        close(pfd[1]);
        while (read(pfd[0], &c, 1) == 1)
            ;
        _exit(8);
    }
    close(pfd[0]);
    long r = ptrace(PTRACE_SEIZE, p, 0, 0);
    say("seize %ld\n", r);
    errno = 0;
    r = ptrace(PTRACE_SEIZE, p, 0, 0);
    say("seize again %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(PTRACE_GETREGS, p, 0, &(struct user_regs_struct){0});
    say("getregs while running: %ld %s\n", r, ename(errno));
    /* Interrupt until the child is caught inside its blocking read (it
     * may still be starting): a budget of attempts, not a time. */
    struct user_regs_struct regs;
    int st = 0, in_read = 0, attempts = 0;
    siginfo_t si;
    for (; attempts < 2000 && !in_read; attempts++) {
        ptrace(PTRACE_INTERRUPT, p, 0, 0);
        waitpid(p, &st, 0);
        ptrace(PTRACE_GETREGS, p, 0, &regs);
        in_read = regs.orig_rax == SYS_read && (long long)regs.rax == -512;
        ptrace(PTRACE_GETSIGINFO, p, 0, &si);
        if (!in_read) {
            ptrace(PTRACE_CONT, p, 0, 0);
            usleep(1000);
        }
    }
    status("interrupt", st);
    say("interrupted read: %d\n", in_read);
    say("interrupt siginfo signo %d code %#x\n", si.si_signo, si.si_code);
    ptrace(PTRACE_CONT, p, 0, 0);
    kill(p, SIGSTOP);
    wait_for(p, "sigstop delivery");
    ptrace(PTRACE_CONT, p, 0, SIGSTOP);
    wait_for(p, "group stop");
    r = ptrace(PTRACE_LISTEN, p, 0, 0);
    say("listen %ld\n", r);
    say("wnohang while listening: %d\n", waitpid(p, &st, WNOHANG));
    kill(p, SIGCONT);
    wait_for(p, "after sigcont");
    ptrace(PTRACE_CONT, p, 0, 0);
    wait_for(p, "sigcont delivery");
    ptrace(PTRACE_CONT, p, 0, 0);
    close(pfd[1]);
    wait_for(p, "seized exit");
}

/* ---- single-step ---------------------------------------------------- */
static void singlestep(void) {
    pid_t p = fork();
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        __asm__ volatile("int3\n\t"
                         "mov $5, %%ecx\n\t"
                         "1: dec %%ecx\n\t"
                         "jnz 1b\n\t"
                         "nop\n\t"
                         "int3\n\t" ::: "ecx", "cc");
        _exit(0);
    }
    wait_for(p, "step first");
    ptrace(PTRACE_CONT, p, 0, 0);
    wait_for(p, "step int3");
    int steps = 0, st = 0;
    siginfo_t si;
    for (; steps < 100; steps++) {
        ptrace(PTRACE_SINGLESTEP, p, 0, 0);
        waitpid(p, &st, 0);
        if (!WIFSTOPPED(st))
            break;
        memset(&si, 0, sizeof si);
        ptrace(PTRACE_GETSIGINFO, p, 0, &si);
        if (si.si_code != TRAP_TRACE)
            break;
    }
    struct user_regs_struct regs;
    ptrace(PTRACE_GETREGS, p, 0, &regs);
    say("steps %d, last sig %d code %d, TF visible %d\n", steps, WSTOPSIG(st), si.si_code,
        (int)((regs.eflags >> 8) & 1));
    ptrace(PTRACE_CONT, p, 0, 0);
    wait_for(p, "step exit");
}

/* ---- FPU registers and register sets -------------------------------- */
static void fpregs(void) {
    pid_t p = fork();
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        unsigned int m = 0;
        __asm__ volatile("stmxcsr %0" : "=m"(m));
        say("child mxcsr %#x\n", m);
        _exit(0);
    }
    wait_for(p, "fpregs stop");
    struct user_fpregs_struct fp;
    long r = ptrace(PTRACE_GETFPREGS, p, 0, &fp);
    say("getfpregs %ld mxcsr %#x cwd %#x\n", r, fp.mxcsr, fp.cwd);
    fp.mxcsr |= 0x8000; /* flush to zero */
    r = ptrace(PTRACE_SETFPREGS, p, 0, &fp);
    say("setfpregs %ld\n", r);
    struct user_fpregs_struct bad = fp;
    bad.mxcsr = 0xffffffff;
    errno = 0;
    r = ptrace(PTRACE_SETFPREGS, p, 0, &bad);
    say("setfpregs bad mxcsr %ld %s\n", r, ename(errno));
    struct user_regs_struct regs;
    struct iovec iov = {&regs, sizeof regs};
    r = ptrace(PTRACE_GETREGSET, p, (void *)1 /* NT_PRSTATUS */, &iov);
    say("regset prstatus %ld len %zu\n", r, iov.iov_len);
    static unsigned char xs[16384];
    struct iovec xiov = {xs, sizeof xs};
    r = ptrace(PTRACE_GETREGSET, p, (void *)0x202 /* NT_X86_XSTATE */, &xiov);
    unsigned long long xcr0;
    memcpy(&xcr0, xs + 464, 8);
    unsigned int mx;
    memcpy(&mx, xs + 24, 4);
    say("regset xstate %ld bigger than fxsave %d, xcr0 has x87+sse %d, mxcsr %#x\n", r,
        xiov.iov_len > 512, (int)((xcr0 & 3) == 3), mx);
    struct iovec fiov = {&fp, sizeof fp};
    r = ptrace(PTRACE_GETREGSET, p, (void *)2 /* NT_PRFPREG */, &fiov);
    say("regset prfpreg %ld len %zu\n", r, fiov.iov_len);
    struct iovec odd = {&regs, 13};
    errno = 0;
    r = ptrace(PTRACE_GETREGSET, p, (void *)1, &odd);
    say("regset odd length %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(PTRACE_GETREGSET, p, (void *)0x999, &iov);
    say("regset unknown %ld %s\n", r, ename(errno));
    ptrace(PTRACE_CONT, p, 0, 0);
    wait_for(p, "fpregs exit");
}

/* ---- process_vm_readv/writev ---------------------------------------- */
static char shared_buf[64] = "hello from the child";

static void process_vm(void) {
    int pfd[2], ready[2];
    if (pipe(pfd) || pipe(ready))
        return;
    pid_t p = fork();
    if (p == 0) {
        char c;
        close(pfd[1]);
        close(ready[0]);
        strcpy(shared_buf, "child's own data");
        close(ready[1]);
        while (read(pfd[0], &c, 1) == 1)
            ;
        say("child buffer now: %s\n", shared_buf);
        _exit(0);
    }
    close(pfd[0]);
    close(ready[1]);
    char c;
    while (read(ready[0], &c, 1) > 0)
        ;
    close(ready[0]);
    char got[64] = "";
    struct iovec l = {got, 16}, rv = {shared_buf, 16};
    long n = process_vm_readv(p, &l, 1, &rv, 1, 0);
    say("readv %ld: %.16s\n", n, got);
    /* Partial: the second remote element is unmapped. */
    char big[64];
    struct iovec l2 = {big, 64};
    struct iovec r2[2] = {{shared_buf, 5}, {(void *)0x1000, 10}};
    n = process_vm_readv(p, &l2, 1, r2, 2, 0);
    say("partial readv %ld\n", n);
    struct iovec r3 = {(void *)0x1000, 10};
    errno = 0;
    n = process_vm_readv(p, &l2, 1, &r3, 1, 0);
    say("unmapped remote: %ld %s\n", n, ename(errno));
    struct iovec l4 = {(void *)0x1000, 10};
    errno = 0;
    n = process_vm_readv(p, &l4, 1, &rv, 1, 0);
    say("unmapped local: %ld %s\n", n, ename(errno));
    errno = 0;
    n = process_vm_readv(p, &l, 1, &rv, 1, 1);
    say("bad flags: %ld %s\n", n, ename(errno));
    errno = 0;
    n = process_vm_readv(p, &l, 1025, &rv, 1, 0);
    say("too many iovecs: %ld %s\n", n, ename(errno));
    errno = 0;
    n = process_vm_readv(0x3ffffff0, &l, 1, &rv, 1, 0);
    say("no such pid: %ld %s\n", n, ename(errno));
    errno = 0;
    struct iovec rt = {(void *)probe, 4};
    n = process_vm_writev(p, &l, 1, &rt, 1, 0);
    say("writev to text: %ld %s\n", n, ename(errno));
    char msg[] = "written by parent";
    struct iovec lw = {msg, sizeof msg}, rw = {shared_buf, sizeof msg};
    n = process_vm_writev(p, &lw, 1, &rw, 1, 0);
    say("writev %ld\n", n);
    close(pfd[1]);
    wait_for(p, "vm child");
}

/* ---- hostile -------------------------------------------------------- */
static void hostile(void) {
    errno = 0;
    long r = ptrace(PTRACE_ATTACH, getpid(), 0, 0);
    say("attach self: %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(PTRACE_SEIZE, getpid(), 0, 0);
    say("seize self: %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(PTRACE_CONT, getppid(), 0, 0);
    say("cont untraced: %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(PTRACE_SEIZE, 0x3ffffff0, 0, 0);
    say("seize missing: %ld %s\n", r, ename(errno));
    pid_t p = fork();
    if (p == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        _exit(1);
    }
    wait_for(p, "hostile stop");
    unsigned long addrs[] = {0, 0x1000, 0xffffffff81000000UL, 0x800000000000UL, ~0UL - 3};
    for (int i = 0; i < 5; i++) {
        errno = 0;
        long v = ptrace(PTRACE_PEEKDATA, p, (void *)addrs[i], 0);
        int e1 = errno;
        errno = 0;
        long w = ptrace(PTRACE_POKEDATA, p, (void *)addrs[i], (void *)1);
        say("addr %d: peek %ld %s poke %ld %s\n", i, v, ename(e1), w, ename(errno));
    }
    errno = 0;
    r = ptrace(PTRACE_GETREGS, p, 0, (void *)8);
    say("getregs to bad pointer: %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(PTRACE_SETOPTIONS, p, 0, (void *)0x80000000UL);
    say("bad options: %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(PTRACE_CONT, p, 0, (void *)1000);
    say("bad signal: %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(0x7777, p, 0, 0);
    say("bad request: %ld %s\n", r, ename(errno));
    errno = 0;
    r = ptrace(PTRACE_LISTEN, p, 0, 0);
    say("listen without seize: %ld %s\n", r, ename(errno));
    /* Kill and detach race: the end is a SIGKILL death either way
     * (tests/guest/ptrace_kill_race.c repeats it many times). */
    kill(p, SIGKILL);
    ptrace(PTRACE_DETACH, p, 0, 0);
    wait_for(p, "killed tracee");
}

/* ---- init (only under ruml, where this program is pid 1) ------------ */
static void init_checks(void) {
    pid_t p = fork();
    if (p == 0) {
        if (setuid(65534) != 0)
            _exit(40);
        errno = 0;
        long r = ptrace(PTRACE_ATTACH, 1, 0, 0);
        say("unprivileged attach to init: %ld %s\n", r, ename(errno));
        errno = 0;
        r = ptrace(PTRACE_SEIZE, 1, 0, 0);
        say("unprivileged seize of init: %ld %s\n", r, ename(errno));
        char buf[8];
        struct iovec l = {buf, 8}, rv = {(void *)&target, 8};
        errno = 0;
        r = process_vm_readv(1, &l, 1, &rv, 1, 0);
        say("unprivileged readv of init: %ld %s\n", r, ename(errno));
        errno = 0;
        int fd = open("/proc/1/mem", O_RDONLY);
        say("unprivileged open of init's mem: %d %s\n", fd < 0 ? -1 : 0, ename(errno));
        _exit(0);
    }
    wait_for(p, "unprivileged child");
    p = fork();
    if (p == 0) {
        /* Root may trace init (Linux has no special case for pid 1). */
        long r = ptrace(PTRACE_SEIZE, 1, 0, 0);
        say("root seize of init: %ld\n", r);
        ptrace(PTRACE_INTERRUPT, 1, 0, 0);
        int st = 0;
        pid_t w = waitpid(1, &st, __WALL);
        say("init stopped: %d event %d\n", w == 1, st >> 16);
        r = ptrace(PTRACE_DETACH, 1, 0, 0);
        say("detach init: %ld\n", r);
        _exit(0);
    }
    wait_for(p, "root child");
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc > 1 && strcmp(argv[1], "exit7") == 0)
        return 7;
    if (argc > 1 && strcmp(argv[1], "init") == 0) {
        setvbuf(stdout, NULL, _IONBF, 0);
        if (getpid() != 1)
            return 2;
        init_checks();
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    traceme_exec();
    syscalls();
    peek_poke(0);
    peek_poke(1);
    fork_events();
    seize();
    singlestep();
    fpregs();
    process_vm();
    hostile();
    return 0;
}
