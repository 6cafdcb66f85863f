/* Exit statuses as a parent sees them: normal exits (0, 255, 256 -> 0,
 * -1 -> 255), deaths by SIGKILL, SIGTERM, SIGSEGV, SIGABRT, SIGFPE (from a
 * real fault), a fault in a non-main thread killing the whole process, and
 * exit() from a non-main thread; WIFEXITED/WEXITSTATUS/WIFSIGNALED/WTERMSIG/
 * WCOREDUMP and waitid's si_code/si_status. Children that die by a signal
 * first make themselves non-dumpable and set RLIMIT_CORE to 0, so no core
 * dump happens anywhere and WCOREDUMP is deterministically false. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static void no_core(void) {
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static const char *code_name(int c) {
    switch (c) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    default: return "?";
    }
}

static void describe(const char *what, int st) {
    if (WIFEXITED(st))
        printf("%-28s raw=%04x WIFEXITED status=%d\n", what, st, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("%-28s raw=%04x WIFSIGNALED sig=%d (%s) core=%s\n", what, st,
               WTERMSIG(st), strsignal(WTERMSIG(st)), WCOREDUMP(st) ? "yes" : "no");
    else
        printf("%-28s raw=%04x other\n", what, st);
}

static void *thread_exit_main(void *arg) {
    (void)arg;
    exit(33);
}

static void *thread_fault_main(void *arg) {
    (void)arg;
    no_core();
    *(volatile int *)16 = 1;
    return NULL;
}

static void expect(const char *what, int st, int exited, int value) {
    describe(what, st);
    int ok = exited ? (WIFEXITED(st) && WEXITSTATUS(st) == value)
                    : (WIFSIGNALED(st) && WTERMSIG(st) == value && !WCOREDUMP(st));
    if (!ok) {
        printf("  FAIL: expected %s %d\n", exited ? "exit" : "signal", value);
        failures++;
    }
}

static int run_child(int kind) {
    pid_t pid = fork();
    if (pid == 0) {
        switch (kind) {
        case 0: exit(0);
        case 1: exit(255);
        case 2: exit(256);
        case 3: _exit(-1);
        case 4: no_core(); for (;;) pause();                  /* SIGKILL */
        case 5: no_core(); for (;;) pause();                  /* SIGTERM */
        case 6: no_core(); *(volatile int *)8 = 1; break;     /* SIGSEGV */
        case 7: no_core(); abort();                           /* SIGABRT */
        case 8: {                                             /* SIGFPE */
            no_core();
            int zero = 0, x = 1, hi = 0;
            __asm__ volatile("idivl %2" : "+a"(x), "+d"(hi) : "r"(zero));
            break;
        }
        case 9: {                                             /* thread exit() */
            pthread_t t;
            pthread_create(&t, NULL, thread_exit_main, NULL);
            for (;;) pause();
        }
        case 10: {                                            /* thread faults */
            pthread_t t;
            pthread_create(&t, NULL, thread_fault_main, NULL);
            for (;;) pause();
        }
        case 11: {                                            /* main exits, thread lingers */
            no_core();
            pthread_t t;
            pthread_create(&t, NULL, thread_exit_main, NULL);
            pthread_exit(NULL); /* the other thread's exit(33) decides */
        }
        case 12: no_core(); raise(SIGUSR1); break;            /* default: terminate */
        }
        _exit(99);
    }
    if (kind == 4 || kind == 5) {
        usleep(20 * 1000);
        kill(pid, kind == 4 ? SIGKILL : SIGTERM);
    }
    int st = -1;
    if (waitpid(pid, &st, 0) != pid)
        printf("waitpid failed: %s\n", strerror(errno));
    return st;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    expect("exit(0)", run_child(0), 1, 0);
    expect("exit(255)", run_child(1), 1, 255);
    expect("exit(256)", run_child(2), 1, 0);
    expect("_exit(-1)", run_child(3), 1, 255);
    expect("SIGKILL", run_child(4), 0, SIGKILL);
    expect("SIGTERM", run_child(5), 0, SIGTERM);
    expect("SIGSEGV (wild store)", run_child(6), 0, SIGSEGV);
    expect("SIGABRT (abort)", run_child(7), 0, SIGABRT);
    expect("SIGFPE (divide by zero)", run_child(8), 0, SIGFPE);
    expect("exit(33) from a thread", run_child(9), 1, 33);
    expect("SIGSEGV in a thread", run_child(10), 0, SIGSEGV);
    expect("pthread_exit in main", run_child(11), 1, 33);
    expect("SIGUSR1 default action", run_child(12), 0, SIGUSR1);

    /* waitid's view of a signal death and of an exit. */
    pid_t pid = fork();
    if (pid == 0) {
        no_core();
        *(volatile int *)8 = 1;
        _exit(99);
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    waitid(P_PID, pid, &si, WEXITED);
    printf("waitid after SIGSEGV: %s si_status=%d\n", code_name(si.si_code), si.si_status);
    if (si.si_code != CLD_KILLED || si.si_status != SIGSEGV)
        failures++;
    pid = fork();
    if (pid == 0)
        exit(200);
    memset(&si, 0, sizeof si);
    waitid(P_PID, pid, &si, WEXITED);
    printf("waitid after exit(200): %s si_status=%d\n", code_name(si.si_code),
           si.si_status);
    if (si.si_code != CLD_EXITED || si.si_status != 200)
        failures++;

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
