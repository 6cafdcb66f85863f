/* Job control: SIGSTOP/SIGCONT/SIGTERM on a child, as seen by waitpid
 * (WUNTRACED, WCONTINUED), waitid (WSTOPPED, WCONTINUED) and a SIGCHLD
 * SA_SIGINFO handler (CLD_STOPPED, CLD_CONTINUED, CLD_KILLED, CLD_EXITED).
 * A stopped child does not run. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
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

#define MAXEV 32
static volatile int ev_code[MAXEV], ev_status[MAXEV], ev_pid[MAXEV];
static volatile int nev;

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    if (nev < MAXEV) {
        ev_code[nev] = si->si_code;
        ev_status[nev] = si->si_status;
        ev_pid[nev] = si->si_pid;
        nev++;
    }
}

static const char *code_name(int c) {
    switch (c) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    case CLD_TRAPPED: return "CLD_TRAPPED";
    default: return "?";
    }
}

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static sigset_t chld_set;

/* Lets the (blocked) SIGCHLD in and waits until the handler has recorded
 * `want` events in total, up to ~3 s. */
static void collect(int want) {
    sigprocmask(SIG_UNBLOCK, &chld_set, NULL);
    for (int i = 0; i < 3000 && nev < want; i++)
        msleep(1);
    sigprocmask(SIG_BLOCK, &chld_set, NULL);
}

static void report_event(int i, pid_t child) {
    if (i >= nev) {
        printf("SIGCHLD #%d: missing\n", i);
        failures++;
        return;
    }
    printf("SIGCHLD #%d: %s status=%d from child: %s\n", i, code_name(ev_code[i]),
           ev_status[i], ev_pid[i] == child ? "yes" : "no");
}

static int run(void);

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Everything runs in a child: under ruml this program is init, and a
     * process group whose members' parents are all init (or in another
     * session) is orphaned, where SIGTSTP is discarded. The test process is
     * not init, so its children can have a non-orphaned group of their own. */
    pid_t top = fork();
    if (top == 0)
        _exit(run());
    int st;
    if (waitpid(top, &st, 0) != top || !WIFEXITED(st)) {
        printf("test process died: status %#x\n", st);
        return 1;
    }
    return WEXITSTATUS(st);
}

static int run(void) {
    volatile long *counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&chld_set);
    sigaddset(&chld_set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld_set, NULL);

    /* --- child 1: STOP, CONT, TERM --- */
    pid_t c = fork();
    if (c == 0) {
        sigprocmask(SIG_UNBLOCK, &chld_set, NULL);
        for (;;) {
            (*counter)++;
            msleep(1);
        }
    }
    while (*counter < 5)
        msleep(1);

    int st = 0;
    kill(c, SIGSTOP);
    pid_t r = waitpid(c, &st, WUNTRACED);
    CHECK(r == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP,
          "waitpid(WUNTRACED): WIFSTOPPED by SIGSTOP");
    collect(1);
    report_event(0, c);
    long frozen = *counter;
    msleep(100);
    CHECK(*counter == frozen, "counter frozen while stopped");
    CHECK(waitpid(c, &st, WUNTRACED | WNOHANG) == 0, "stop reported only once");

    kill(c, SIGCONT);
    r = waitpid(c, &st, WCONTINUED);
    CHECK(r == c && WIFCONTINUED(st), "waitpid(WCONTINUED): WIFCONTINUED");
    collect(2);
    report_event(1, c);
    for (int i = 0; i < 2000 && *counter == frozen; i++)
        msleep(1);
    CHECK(*counter > frozen, "counter advances after SIGCONT");

    /* Again through waitid, with WNOWAIT peeks. */
    kill(c, SIGSTOP);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int w = waitid(P_PID, c, &si, WSTOPPED | WNOWAIT);
    CHECK(w == 0 && si.si_code == CLD_STOPPED && si.si_status == SIGSTOP,
          "waitid(WSTOPPED|WNOWAIT): CLD_STOPPED SIGSTOP");
    memset(&si, 0, sizeof si);
    w = waitid(P_PID, c, &si, WSTOPPED);
    CHECK(w == 0 && si.si_code == CLD_STOPPED && si.si_pid == c,
          "waitid(WSTOPPED) consumes it");
    collect(3);
    report_event(2, c);
    kill(c, SIGCONT);
    memset(&si, 0, sizeof si);
    w = waitid(P_PID, c, &si, WCONTINUED);
    CHECK(w == 0 && si.si_code == CLD_CONTINUED && si.si_status == SIGCONT,
          "waitid(WCONTINUED): CLD_CONTINUED SIGCONT");
    collect(4);
    report_event(3, c);

    kill(c, SIGTERM);
    r = waitpid(c, &st, 0);
    CHECK(r == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
          "SIGTERM: WIFSIGNALED by SIGTERM");
    collect(5);
    report_event(4, c);

    /* --- child 2: SIGKILL while stopped --- */
    c = fork();
    if (c == 0) {
        for (;;)
            pause();
    }
    kill(c, SIGSTOP);
    r = waitpid(c, &st, WUNTRACED);
    CHECK(r == c && WIFSTOPPED(st), "second child stopped");
    collect(6);
    report_event(5, c);
    kill(c, SIGKILL);
    r = waitpid(c, &st, 0);
    CHECK(r == c && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
          "SIGKILL of a stopped child: WIFSIGNALED by SIGKILL");
    collect(7);
    report_event(6, c);

    /* --- child 3: stops itself with SIGTSTP, exits after SIGCONT --- */
    /* SIGCHLD is not queued: the child waits on a pipe after the
     * continue, so CLD_CONTINUED and CLD_EXITED arrive one at a time. */
    int hold[2];
    if (pipe(hold) != 0)
        return 1;
    c = fork();
    if (c == 0) {
        char b;
        close(hold[1]);
        /* Own process group, whose parent (the test process) is in another
         * group of the same session: not orphaned, so SIGTSTP stops. */
        setpgid(0, 0);
        raise(SIGTSTP);
        if (read(hold[0], &b, 1) < 0)
            _exit(1);
        _exit(17);
    }
    close(hold[0]);
    r = waitpid(c, &st, WUNTRACED);
    CHECK(r == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP,
          "self-stop with SIGTSTP");
    collect(8);
    report_event(7, c);
    kill(c, SIGCONT);
    collect(9);
    report_event(8, c);
    close(hold[1]);
    r = waitpid(c, &st, 0); /* no WCONTINUED: skips straight to the exit */
    CHECK(r == c && WIFEXITED(st) && WEXITSTATUS(st) == 17,
          "continued child exits 17");
    collect(10);
    report_event(9, c);

    int before;
    /* --- SIGTSTP in an orphaned process group (a new session) is
     * discarded: the child does not stop and exits normally. --- */
    before = nev;
    c = fork();
    if (c == 0) {
        setsid();
        raise(SIGTSTP);
        raise(SIGTTIN);
        raise(SIGTTOU);
        _exit(18);
    }
    r = waitpid(c, &st, WUNTRACED);
    CHECK(r == c && WIFEXITED(st) && WEXITSTATUS(st) == 18,
          "SIGTSTP/SIGTTIN/SIGTTOU discarded in an orphaned process group");
    collect(before + 1);
    report_event(before, c);

    /* --- SA_NOCLDSTOP: no SIGCHLD for stop/continue, only for the exit --- */
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    before = nev;
    c = fork();
    if (c == 0) {
        for (;;)
            pause();
    }
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    waitpid(c, &st, WCONTINUED);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    collect(before + 1);
    msleep(20);
    collect(before + 1);
    CHECK(nev == before + 1 && ev_code[before] == CLD_KILLED,
          "SA_NOCLDSTOP: only the CLD_KILLED event");

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
