/* Hostile input for guest seccomp: a fixed-seed stream of random classic
 * BPF programs (mostly well-formed opcodes, random jumps, constants and
 * return values, loads of seccomp_data's nr and arch only, so that the
 * outcome does not depend on addresses) is fed to seccomp() in children;
 * each child then makes one system call and reports how it went. The
 * output (errno of the install, and how the child ended) must match
 * native Linux, and the kernel must survive all of it. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t seed = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (uint32_t)(seed >> 11);
}

static const uint16_t codes[] = {
    BPF_LD | BPF_W | BPF_ABS, BPF_LD | BPF_W | BPF_LEN, BPF_LDX | BPF_W | BPF_LEN,
    BPF_LD | BPF_IMM,         BPF_LDX | BPF_IMM,        BPF_LD | BPF_MEM,
    BPF_LDX | BPF_MEM,        BPF_ST,                   BPF_STX,
    BPF_RET | BPF_K,          BPF_RET | BPF_A,          BPF_MISC | BPF_TAX,
    BPF_MISC | BPF_TXA,       BPF_ALU | BPF_ADD | BPF_K, BPF_ALU | BPF_SUB | BPF_X,
    BPF_ALU | BPF_MUL | BPF_K, BPF_ALU | BPF_DIV | BPF_X, BPF_ALU | BPF_DIV | BPF_K,
    BPF_ALU | BPF_AND | BPF_K, BPF_ALU | BPF_OR | BPF_X,  BPF_ALU | BPF_XOR | BPF_K,
    BPF_ALU | BPF_LSH | BPF_X, BPF_ALU | BPF_RSH | BPF_K, BPF_ALU | BPF_NEG,
    BPF_JMP | BPF_JA,         BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JGT | BPF_X,
    BPF_JMP | BPF_JGE | BPF_K, BPF_JMP | BPF_JSET | BPF_K,
};
static const uint32_t rets[] = {
    SECCOMP_RET_ALLOW,      SECCOMP_RET_ERRNO | 13, SECCOMP_RET_ERRNO | 9999,
    SECCOMP_RET_TRAP | 5,   SECCOMP_RET_KILL_THREAD, SECCOMP_RET_KILL_PROCESS,
    SECCOMP_RET_TRACE | 1,  SECCOMP_RET_LOG,        SECCOMP_RET_USER_NOTIF,
    0x00010000,             0x7fff0001,             SECCOMP_RET_ERRNO,
};

static uint32_t constant(uint16_t code) {
    uint32_t r = rnd();
    switch (code) {
    case BPF_LD | BPF_W | BPF_ABS:
        return r % 8 == 0 ? r % 70 : (r % 2) * 4; /* mostly nr or arch */
    case BPF_RET | BPF_K:
        return rets[r % (sizeof rets / sizeof rets[0])];
    case BPF_LD | BPF_MEM: case BPF_LDX | BPF_MEM: case BPF_ST: case BPF_STX:
        return r % 18;
    case BPF_JMP | BPF_JEQ | BPF_K: case BPF_JMP | BPF_JGE | BPF_K:
        return r % 4 ? 110 + r % 3 : 0xc000003e;
    case BPF_JMP | BPF_JA:
        return r % 5;
    default:
        return r % 4 == 0 ? r : r % 40;
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int accepted = 0;
    for (int i = 0; i < 300; i++) {
        struct sock_filter prog[24];
        int n = 1 + rnd() % 24;
        for (int j = 0; j < n; j++) {
            uint32_t r = rnd();
            uint16_t code = r % 16 == 0 ? (uint16_t)(r >> 8) : codes[(r >> 8) % (sizeof codes / sizeof codes[0])];
            prog[j].code = code;
            prog[j].jt = rnd() % 5;
            prog[j].jf = rnd() % 5;
            prog[j].k = constant(code);
        }
        if (rnd() % 4) {
            prog[n - 1].code = BPF_RET | BPF_K;
            prog[n - 1].k = rets[rnd() % (sizeof rets / sizeof rets[0])];
        }
        pid_t p = fork();
        if (p == 0) {
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
            struct sock_fprog fp = {(unsigned short)n, prog};
            if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp, 0, 0, 0) != 0)
                syscall(SYS_exit_group, 200 + (errno & 31), 0, 0, 0, 0, 0);
            long r = syscall(SYS_getppid, 0, 0, 0, 0, 0, 0);
            /* exit_group itself may be filtered: exit as the filter allows. */
            syscall(SYS_exit_group, r < 0 ? errno % 128 : 100, 0, 0, 0, 0, 0);
            syscall(SYS_exit, 150, 0, 0, 0, 0, 0);
            /* Both exits refused: a fault ends the child, no call needed. */
            *(volatile int *)0 = 0;
            for (;;)
                ;
        }
        int st = 0;
        waitpid(p, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) >= 200) {
            printf("%3d: install errno %d\n", i, WEXITSTATUS(st) - 200);
        } else {
            accepted++;
            if (WIFEXITED(st))
                printf("%3d: installed, exit %d\n", i, WEXITSTATUS(st));
            else
                printf("%3d: installed, signal %d core %d\n", i, WTERMSIG(st), WCOREDUMP(st) ? 1 : 0);
        }
    }
    printf("accepted %d\n", accepted);
    return 0;
}
