/*
 * fault_context: what a SIGSEGV handler finds in its ucontext for page
 * faults: the page-fault error code (REG_ERR: 1 protection, 2 write,
 * 4 user, 16 instruction fetch), the trap number (REG_TRAPNO, 14) and the
 * faulting address (REG_CR2). UML's userspace reads exactly these in its
 * stub's SIGSEGV handler to tell a write fault from a read fault.
 * Differential: the same lines natively and under ruml.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile greg_t err, trapno, cr2;
static volatile uintptr_t fault_addr;

static void on_segv(int sig, siginfo_t *si, void *p)
{
    ucontext_t *uc = p;
    (void)sig;
    err = uc->uc_mcontext.gregs[REG_ERR];
    trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
    cr2 = uc->uc_mcontext.gregs[REG_CR2];
    fault_addr = (uintptr_t)si->si_addr;
    siglongjmp(env, 1);
}

static void report(const char *what, char *page)
{
    printf("%s: err=%#lx trapno=%ld cr2=page+%#lx si_addr=page+%#lx\n", what,
           (long)err, (long)trapno, (unsigned long)((uintptr_t)cr2 - (uintptr_t)page),
           (unsigned long)(fault_addr - (uintptr_t)page));
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);

    long pg = sysconf(_SC_PAGESIZE);
    char *page = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 1;
    page[0] = 0xc3; /* populate it; 0xc3 is `ret` */

    /* A write to a present read-only page: protection | write | user. */
    mprotect(page, pg, PROT_READ);
    if (!sigsetjmp(env, 1)) {
        *(volatile char *)(page + 0x123) = 1;
        printf("write to read-only page: NOT REACHED FAIL\n");
    } else {
        report("write to read-only page", page);
    }

    /* A read of the same page works. */
    printf("read of read-only page: %#x\n", (unsigned char)*(volatile char *)page);

    /* A jump into a present page that may not be executed: fetch. */
    if (!sigsetjmp(env, 1)) {
        ((void (*)(void))page)();
        printf("call into non-exec page: NOT REACHED FAIL\n");
    } else {
        report("call into non-exec page", page);
    }

    /* A read of a PROT_NONE page: not present, user, read. */
    mprotect(page, pg, PROT_NONE);
    if (!sigsetjmp(env, 1)) {
        (void)*(volatile char *)(page + 0x10);
        printf("read of PROT_NONE page: NOT REACHED FAIL\n");
    } else {
        report("read of PROT_NONE page", page);
    }

    /* A read of an unmapped page: not present, user, read. */
    munmap(page, pg);
    if (!sigsetjmp(env, 1)) {
        (void)*(volatile char *)(page + 0x20);
        printf("read of unmapped page: NOT REACHED FAIL\n");
    } else {
        report("read of unmapped page", page);
    }

    printf("result: OK\n");
    return 0;
}
