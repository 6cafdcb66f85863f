/*
 * ptrace_arch_prctl: PTRACE_ARCH_PRCTL (as UML sets its processes' %fs):
 * ARCH_GET_FS into the tracer's memory, ARCH_SET_FS seen by PTRACE_GETREGS
 * and by the tracee itself, errors for a bad code and a kernel address.
 * Differential: the same lines natively and under ruml.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long slot = 0x1234;

int main(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        /* Stop with raw system calls: raise() would check its stack
         * canary through the %fs the tracer changes meanwhile. */
        long me;
        __asm__ volatile("syscall" : "=a"(me) : "0"(39L) : "rcx", "r11", "memory");
        __asm__ volatile("syscall" : : "a"(62L), "D"(me), "S"((long)SIGSTOP)
                         : "rcx", "r11", "memory");
        /* The tracer pointed %fs at `slot`: no libc from here (its TLS
         * and stack canary live behind %fs), raw system calls only. */
        unsigned long v;
        __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
        static const char yes[] = "child: %fs:0 is slot's value\n";
        static const char no[] = "child: %fs:0 is something else FAIL\n";
        const char *msg = v == 0x1234 ? yes : no;
        long len = v == 0x1234 ? (long)sizeof yes - 1 : (long)sizeof no - 1, ret;
        __asm__ volatile("syscall" : "=a"(ret) : "0"(1L), "D"(1L), "S"(msg), "d"(len)
                         : "rcx", "r11", "memory");
        __asm__ volatile("syscall" : : "a"(231L), "D"(0L) : "rcx", "r11", "memory");
        for (;;)
            ;
    }
    int st;
    waitpid(pid, &st, 0);
    printf("stopped: %d\n", WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    unsigned long old = 0;
    long r = ptrace(PTRACE_ARCH_PRCTL, pid, &old, ARCH_GET_FS);
    printf("ARCH_GET_FS: %ld, nonzero: %d\n", r, old != 0);
    r = ptrace(PTRACE_ARCH_PRCTL, pid, &slot, ARCH_SET_FS);
    printf("ARCH_SET_FS: %ld\n", r);
    struct user_regs_struct regs;
    ptrace(PTRACE_GETREGS, pid, 0, &regs);
    printf("GETREGS fs_base is &slot: %d\n", regs.fs_base == (unsigned long)&slot);
    unsigned long now = 0;
    ptrace(PTRACE_ARCH_PRCTL, pid, &now, ARCH_GET_FS);
    printf("ARCH_GET_FS again is &slot: %d\n", now == (unsigned long)&slot);
    errno = 0;
    r = ptrace(PTRACE_ARCH_PRCTL, pid, 0xffffffff80000000UL, ARCH_SET_GS);
    printf("ARCH_SET_GS kernel address: %ld %s\n", r, strerror(errno));
    errno = 0;
    r = ptrace(PTRACE_ARCH_PRCTL, pid, &now, 0x9999);
    printf("bad code: %ld %s\n", r, strerror(errno));
    errno = 0;
    r = ptrace(PTRACE_ARCH_PRCTL, pid, (void *)8, ARCH_GET_GS);
    printf("ARCH_GET_GS to a bad address: %ld %s\n", r, strerror(errno));
    fflush(stdout);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("child exited: %d status %d\n", WIFEXITED(st), WEXITSTATUS(st));
    printf("result: OK\n");
    return 0;
}
