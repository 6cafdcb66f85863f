/* Alternate signal stacks: an SA_ONSTACK handler runs on the sigaltstack,
 * sees SS_ONSTACK, cannot change the stack while on it, nests a second
 * signal (a different one, and the same one again with SA_NODEFER) on the
 * same stack below its own frame; a handler without SA_ONSTACK runs on the
 * normal stack; a stack overflow in a thread is caught on its altstack. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        printf(__VA_ARGS__);                                                   \
        if (cond) {                                                            \
            printf(": ok\n");                                                  \
        } else {                                                               \
            printf(": FAIL (%s)\n", #cond);                                    \
            failures++;                                                        \
        }                                                                      \
    } while (0)

#define ALT_SIZE (256 * 1024)
static char altbuf[ALT_SIZE] __attribute__((aligned(64)));

static int on_alt(const void *p) {
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)altbuf;
    return a >= lo && a < lo + ALT_SIZE;
}

/* Results recorded by the handlers (printed from main). */
static volatile int usr1_on_alt, usr1_ss_onstack, usr1_eperm, usr1_ss_size_ok;
static volatile int usr2_on_alt, usr2_below_usr1, usr2_ss_onstack;
static volatile uintptr_t usr1_frame;
static volatile int nodefer_depth, nodefer_max, nodefer_all_alt;
static volatile int nodefer_nested_ok;
static volatile uintptr_t nodefer_prev;
static volatile int plain_on_alt = -1;

static void usr2_handler(int sig) {
    volatile char here;
    (void)sig;
    stack_t cur;
    usr2_on_alt = on_alt((const void *)&here);
    usr2_below_usr1 = (uintptr_t)&here < usr1_frame;
    if (sigaltstack(NULL, &cur) == 0)
        usr2_ss_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
}

static void usr1_handler(int sig) {
    volatile char here;
    (void)sig;
    usr1_frame = (uintptr_t)&here;
    usr1_on_alt = on_alt((const void *)&here);
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0) {
        usr1_ss_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
        usr1_ss_size_ok = cur.ss_sp == altbuf && cur.ss_size == ALT_SIZE;
    }
    /* Changing the altstack while running on it is refused. */
    stack_t nw = {.ss_sp = altbuf, .ss_size = ALT_SIZE, .ss_flags = 0};
    usr1_eperm = sigaltstack(&nw, NULL) == -1 && errno == EPERM;
    /* A different signal nests on the same stack, below this frame. */
    raise(SIGUSR2);
}

static void nodefer_handler(int sig) {
    volatile char here;
    (void)sig;
    int depth = ++nodefer_depth;
    if (depth > nodefer_max)
        nodefer_max = depth;
    if (!on_alt((const void *)&here))
        nodefer_all_alt = 0;
    if (depth > 1 && !((uintptr_t)&here < nodefer_prev))
        nodefer_nested_ok = 0;
    nodefer_prev = (uintptr_t)&here;
    if (depth < 3)
        raise(SIGURG); /* same signal again: SA_NODEFER lets it in */
    nodefer_depth--;
}

static void plain_handler(int sig) {
    volatile char here;
    (void)sig;
    plain_on_alt = on_alt((const void *)&here);
}

/* --- stack overflow in a thread, caught on that thread's altstack --- */
static sigjmp_buf overflow_jmp;
static volatile int segv_on_alt;
static char thread_alt[64 * 1024];

static void segv_handler(int sig, siginfo_t *si, void *uc) {
    volatile char here;
    (void)sig;
    (void)si;
    (void)uc;
    uintptr_t a = (uintptr_t)&here, lo = (uintptr_t)thread_alt;
    segv_on_alt = a >= lo && a < lo + sizeof thread_alt;
    siglongjmp(overflow_jmp, 1);
}

static int recurse(volatile char *prev, int n) {
    volatile char buf[1024];
    if (n > 1000000)
        return 0;
    buf[0] = (char)n;
    buf[1023] = prev ? prev[0] : 0;
    return recurse(buf, n + 1) + buf[5];
}

static void *overflow_thread(void *arg) {
    (void)arg;
    stack_t ss = {.ss_sp = thread_alt, .ss_size = sizeof thread_alt};
    if (sigaltstack(&ss, NULL) != 0)
        return (void *)1;
    if (sigsetjmp(overflow_jmp, 1) == 0) {
        recurse(NULL, 0);
        return (void *)2;
    }
    return (void *)3; /* came back from the handler */
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    stack_t old;
    sigaltstack(NULL, &old);
    CHECK(old.ss_flags == SS_DISABLE, "initially SS_DISABLE");

    /* Too small a stack is refused. */
    stack_t tiny = {.ss_sp = altbuf, .ss_size = 512, .ss_flags = 0};
    CHECK(sigaltstack(&tiny, NULL) == -1 && errno == ENOMEM,
          "ss_size below MINSIGSTKSZ: ENOMEM");
    stack_t bad = {.ss_sp = altbuf, .ss_size = ALT_SIZE, .ss_flags = 12345};
    CHECK(sigaltstack(&bad, NULL) == -1 && errno == EINVAL,
          "bogus ss_flags: EINVAL");

    stack_t ss = {.ss_sp = altbuf, .ss_size = ALT_SIZE, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0, "sigaltstack installed");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_ONSTACK;
    sa.sa_handler = usr1_handler;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = usr2_handler;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    sa.sa_handler = nodefer_handler;
    sigaction(SIGURG, &sa, NULL);
    sa.sa_flags = 0;
    sa.sa_handler = plain_handler;
    sigaction(SIGWINCH, &sa, NULL);

    raise(SIGUSR1);
    CHECK(usr1_on_alt, "SIGUSR1 handler runs on the altstack");
    CHECK(usr1_ss_onstack, "sigaltstack() in the handler reports SS_ONSTACK");
    CHECK(usr1_ss_size_ok, "handler sees the installed ss_sp/ss_size");
    CHECK(usr1_eperm, "changing the altstack while on it: EPERM");
    CHECK(usr2_on_alt, "nested SIGUSR2 handler also on the altstack");
    CHECK(usr2_below_usr1, "nested frame is below the outer handler's");
    CHECK(usr2_ss_onstack, "nested handler sees SS_ONSTACK");

    nodefer_all_alt = 1;
    nodefer_nested_ok = 1;
    raise(SIGURG);
    printf("SA_NODEFER recursion depth: %d\n", nodefer_max);
    CHECK(nodefer_max == 3 && nodefer_all_alt && nodefer_nested_ok,
          "SA_NODEFER self-nesting on the altstack");

    raise(SIGWINCH);
    CHECK(plain_on_alt == 0, "handler without SA_ONSTACK uses the normal stack");

    sigaltstack(NULL, &old);
    CHECK(old.ss_flags == 0, "back in main: not on the altstack");

    /* SS_DISABLE: SA_ONSTACK handlers then run on the normal stack. */
    stack_t dis = {.ss_flags = SS_DISABLE};
    sigaltstack(&dis, NULL);
    usr1_on_alt = -1;
    raise(SIGUSR1);
    CHECK(usr1_on_alt == 0, "after SS_DISABLE, SA_ONSTACK handler on normal stack");
    sigaltstack(NULL, &old);
    CHECK(old.ss_flags == SS_DISABLE, "reports SS_DISABLE");

    /* Stack overflow in a small-stack thread, caught on its altstack. */
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_ONSTACK | SA_SIGINFO;
    sa.sa_sigaction = segv_handler;
    sigaction(SIGSEGV, &sa, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    pthread_t t;
    void *ret = NULL;
    if (pthread_create(&t, &attr, overflow_thread, NULL) == 0)
        pthread_join(t, &ret);
    printf("overflow thread returned %ld\n", (long)ret);
    CHECK((long)ret == 3 && segv_on_alt,
          "stack overflow caught on the thread's altstack");

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
