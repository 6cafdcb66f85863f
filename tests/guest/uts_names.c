/* sethostname/setdomainname errors (safe to run natively as root: every
 * call here fails before changing anything), and EPERM after dropping
 * root. uname's fields are not printed (they differ from the host). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed;
#define CHECK(c) do { if (c) printf("ok: %s\n", #c); else { printf("FAIL: %s (%s)\n", #c, strerrorname_np(errno)); failed = 1; } } while (0)
#define ERR(call, e) do { errno = 0; long r_ = (long)(call); if (r_ == -1 && errno == (e)) printf("ok: %s -> %s\n", #call, #e); else { printf("FAIL: %s -> %ld %s (want %s)\n", #call, r_, strerrorname_np(errno), #e); failed = 1; } } while (0)

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char long_name[80];
    memset(long_name, 'x', sizeof long_name);
    struct utsname u;
    CHECK(uname(&u) == 0);
    ERR(uname((void *)8), EFAULT);
    ERR(sethostname(long_name, 65), EINVAL);
    ERR(setdomainname(long_name, 65), EINVAL);
    ERR(syscall(SYS_sethostname, long_name, -1), EINVAL);
    ERR(syscall(SYS_sethostname, 8, 4), EFAULT);
    ERR(syscall(SYS_setdomainname, 8, 4), EFAULT);
    pid_t p = fork();
    if (p == 0) {
        CHECK(setuid(65534) == 0);
        ERR(sethostname("guest", 5), EPERM);
        ERR(setdomainname("guest", 5), EPERM);
        ERR(sethostname(long_name, 65), EPERM);
        _exit(failed);
    }
    int st;
    waitpid(p, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("result: %s\n", failed ? "FAIL" : "OK");
    return failed;
}
