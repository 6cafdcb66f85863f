/* execve from a non-main thread: every other thread (including the main
 * thread, blocked in pthread_join) is killed, the exec'ing thread takes over
 * the thread-group leader's pid, and the new image runs single-threaded with
 * the exec'ing thread's signal mask; ignored signals stay ignored, handled
 * ones reset to default. The old pid is passed on the command line. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *self;
static char pidbuf[32];

static void handler(int sig) { (void)sig; }

static void *spinner(void *arg) {
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static void *execer(void *arg) {
    (void)arg;
    /* This thread blocks SIGUSR1 before exec; main does not. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    if (gettid() == getpid())
        printf("execing thread is the leader?!\n");
    else
        printf("execing from a non-main thread\n");
    fflush(stdout);
    char *args[] = {self, "after-exec", pidbuf, NULL};
    execv(self, args);
    printf("execv failed: %s\n", strerror(errno));
    fflush(stdout);
    _exit(1);
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc == 3 && strcmp(argv[1], "after-exec") == 0) {
        long old = atol(argv[2]);
        printf("pid kept: %s\n", getpid() == old ? "yes" : "no");
        printf("runs as the thread-group leader: %s\n",
               gettid() == getpid() ? "yes" : "no");
        sigset_t m;
        sigprocmask(SIG_SETMASK, NULL, &m);
        printf("SIGUSR1 blocked (exec'ing thread's mask): %s\n",
               sigismember(&m, SIGUSR1) ? "yes" : "no");
        struct sigaction sa;
        sigaction(SIGUSR2, NULL, &sa);
        printf("SIGUSR2 still ignored: %s\n", sa.sa_handler == SIG_IGN ? "yes" : "no");
        sigaction(SIGHUP, NULL, &sa);
        printf("SIGHUP handler reset to default: %s\n",
               sa.sa_handler == SIG_DFL ? "yes" : "no");
        /* The old threads are gone; new ones can be created and joined. */
        pthread_t t;
        int ok = pthread_create(&t, NULL, spinner, NULL) == 0;
        pthread_cancel(t);
        ok = ok && pthread_join(t, NULL) == 0;
        printf("threads work in the new image: %s\n", ok ? "yes" : "no");
        int fine = getpid() == old && gettid() == getpid() && sigismember(&m, SIGUSR1);
        printf("result: %s\n", fine ? "OK" : "FAIL");
        return fine ? 0 : 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(pidbuf, sizeof pidbuf, "%ld", (long)getpid());
    signal(SIGUSR2, SIG_IGN);
    signal(SIGHUP, handler);

    pthread_t spin[3], ex;
    for (int i = 0; i < 3; i++)
        pthread_create(&spin[i], NULL, spinner, NULL);
    pthread_create(&ex, NULL, execer, NULL);
    pthread_join(ex, NULL); /* never returns: the exec replaces us */
    printf("main thread survived the exec\n");
    return 1;
}
