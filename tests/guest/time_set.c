/* The instance's own wall clock (run as root inside ruml only: natively it
 * would set the host's clock), and the unprivileged errors (run natively
 * too, as "time_set nobody": the same output). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

static const char *err(long r) { return r >= 0 ? "ok" : strerrorname_np(errno); }
static int fails;
#define CHECK(c, ...) do { if (c) printf("ok: " __VA_ARGS__); else { fails++; printf("FAIL: " __VA_ARGS__); } printf("\n"); } while (0)

static double ts(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int nobody(void) {
    if (setgid(65534) || setuid(65534)) {
        perror("setuid");
        return 1;
    }
    struct timespec t = {time(NULL), 0};
    printf("clock_settime: %s\n", err(clock_settime(CLOCK_REALTIME, &t)));
    t.tv_nsec = 1000000000;
    printf("clock_settime bad nsec: %s\n", err(clock_settime(CLOCK_REALTIME, &t)));
    t.tv_nsec = 0;
    printf("clock_settime MONOTONIC: %s\n", err(clock_settime(CLOCK_MONOTONIC, &t)));
    printf("clock_settime bad clock: %s\n", err(clock_settime(99, &t)));
    printf("clock_settime bad pointer: %s\n", err(syscall(SYS_clock_settime, 0, (void *)8)));
    struct timeval tv = {time(NULL), 0};
    printf("settimeofday: %s\n", err(settimeofday(&tv, NULL)));
    tv.tv_usec = 1000000;
    printf("settimeofday bad usec: %s\n", err(settimeofday(&tv, NULL)));
    struct timex tx = {0};
    int r = adjtimex(&tx);
    printf("adjtimex read: %s, precision %ld tolerance %ld\n", err(r), tx.precision, tx.tolerance);
    tx.modes = ADJ_FREQUENCY;
    printf("adjtimex set: %s\n", err(adjtimex(&tx)));
    tx.modes = ADJ_OFFSET_SS_READ;
    printf("adjtime read: %s\n", err(adjtimex(&tx)));
    tx.modes = ADJ_OFFSET_SINGLESHOT;
    printf("adjtime set: %s\n", err(adjtimex(&tx)));
    tx.modes = 0x8000;
    printf("adjtimex ADJ_ADJTIME alone: %s\n", err(adjtimex(&tx)));
    tx.modes = 0;
    printf("clock_adjtime MONOTONIC: %s\n", err(clock_adjtime(CLOCK_MONOTONIC, &tx)));
    printf("clock_adjtime bad clock: %s\n", err(clock_adjtime(99, &tx)));
    printf("adjtimex bad pointer: %s\n", err(syscall(SYS_adjtimex, (void *)8)));
    /* The ALARM clocks depend on the machine having an RTC (ruml's does):
     * tests/guest/alarm_clocks.c. */
    double d = ts(CLOCK_TAI) - ts(CLOCK_REALTIME);
    printf("TAI readable, offset within a second of the TAI offset: %d\n", d > tx.tai - 1 && d < tx.tai + 1);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "nobody") == 0)
        return nobody();
    double host0 = ts(CLOCK_REALTIME), mono0 = ts(CLOCK_MONOTONIC);
    struct timespec t = {(time_t)host0 + 100000, 0};
    CHECK(clock_settime(CLOCK_REALTIME, &t) == 0, "clock_settime +100000 s");
    double r = ts(CLOCK_REALTIME);
    CHECK(r > host0 + 99990 && r < host0 + 100100, "clock_gettime (vDSO) sees it");
    CHECK(syscall(SYS_time, NULL) > host0 + 99990, "time() sees it");
    struct timeval tv;
    gettimeofday(&tv, NULL);
    CHECK(tv.tv_sec > host0 + 99990, "gettimeofday sees it");
    struct timespec sc;
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &sc);
    CHECK(sc.tv_sec > host0 + 99990, "the system call sees it");
    CHECK(ts(CLOCK_MONOTONIC) - mono0 < 100, "MONOTONIC does not jump");
    char path[64];
    snprintf(path, sizeof path, "/tmp/ruml-time-set.%d", (int)getpid());
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    struct stat st;
    fstat(fd, &st);
    CHECK(st.st_mtime > host0 + 99990, "a new file's mtime is the instance's time");
    close(fd);
    unlink(path);

    struct timex tx = {0};
    int state = adjtimex(&tx);
    CHECK(state == TIME_ERROR && (tx.status & STA_UNSYNC), "after a set: TIME_ERROR, STA_UNSYNC (%d, %#x)", state, tx.status);
    CHECK(tx.maxerror >= 16000000 - 1, "maxerror at the phase limit (%ld)", tx.maxerror);

    /* ADJ_SETOFFSET: a step of +5 s. */
    double before = ts(CLOCK_REALTIME);
    tx = (struct timex){.modes = ADJ_SETOFFSET | ADJ_NANO, .time = {5, 0}};
    CHECK(adjtimex(&tx) >= 0, "ADJ_SETOFFSET");
    double step = ts(CLOCK_REALTIME) - before;
    CHECK(step > 4.9 && step < 60, "stepped by 5 s (%.3f)", step);
    tx = (struct timex){.modes = ADJ_SETOFFSET | ADJ_NANO, .time = {0, 1000000000}};
    CHECK(adjtimex(&tx) < 0 && errno == EINVAL, "ADJ_SETOFFSET bad nsec: EINVAL");
    tx = (struct timex){.modes = ADJ_TICK, .tick = 5000};
    CHECK(adjtimex(&tx) < 0 && errno == EINVAL, "ADJ_TICK out of range: EINVAL");

    /* ADJ_FREQUENCY +500 ppm: the wall clock gains on MONOTONIC. */
    tx = (struct timex){.modes = ADJ_FREQUENCY, .freq = 500 << 16};
    CHECK(adjtimex(&tx) >= 0 && tx.freq == 500 << 16, "ADJ_FREQUENCY 500 ppm");
    tx = (struct timex){.modes = ADJ_FREQUENCY, .freq = 100000L << 16};
    adjtimex(&tx);
    CHECK(tx.freq == 500 << 16, "frequency clamped to 500 ppm (%ld)", tx.freq);
    double r0 = ts(CLOCK_REALTIME), m0 = ts(CLOCK_MONOTONIC);
    usleep(1000000);
    double r1 = ts(CLOCK_REALTIME), m1 = ts(CLOCK_MONOTONIC);
    double gain = (r1 - r0) - (m1 - m0), want = (m1 - m0) * 500e-6;
    CHECK(gain > want * 0.25 && gain < want * 2 + 0.0005, "gained %.0f us over %.3f s (want ~%.0f)", gain * 1e6, m1 - m0, want * 1e6);
    tx = (struct timex){.modes = ADJ_FREQUENCY, .freq = 0};
    adjtimex(&tx);

    /* adjtime(3): a slew, reported back as it runs. */
    tx = (struct timex){.modes = ADJ_OFFSET_SINGLESHOT, .offset = 200000};
    CHECK(adjtimex(&tx) >= 0 && tx.offset == 0, "adjtime +200 ms (old %ld)", tx.offset);
    tx = (struct timex){.modes = ADJ_OFFSET_SS_READ};
    adjtimex(&tx);
    CHECK(tx.offset > 0 && tx.offset <= 200000, "slew left: %ld us", tx.offset);
    struct timeval delta = {0, 0}, old;
    CHECK(adjtime(&delta, &old) == 0 && old.tv_usec > 0, "adjtime() cancels it, old %ld us", old.tv_usec);

    /* TAI. */
    tx = (struct timex){.modes = ADJ_TAI, .constant = 37};
    adjtimex(&tx);
    double tai = ts(CLOCK_TAI) - ts(CLOCK_REALTIME);
    CHECK(tai > 36.9 && tai < 37.1, "CLOCK_TAI is REALTIME + 37 s (%.3f)", tai);

    /* settimeofday with a timezone, read back by gettimeofday. */
    struct timezone tz = {-60, 0}, tz2;
    tv.tv_sec = (time_t)host0 + 200000;
    tv.tv_usec = 0;
    CHECK(syscall(SYS_settimeofday, &tv, &tz) == 0, "settimeofday +200000 s, tz -60");
    syscall(SYS_gettimeofday, &tv, &tz2);
    CHECK(tv.tv_sec >= host0 + 199990 && tz2.tz_minuteswest == -60, "gettimeofday: %ld, tz %d", (long)(tv.tv_sec - (time_t)host0), tz2.tz_minuteswest);
    tz.tz_minuteswest = 1000;
    CHECK(syscall(SYS_settimeofday, NULL, &tz) < 0 && errno == EINVAL, "tz out of range: EINVAL");
    printf("%s\n", fails ? "result: FAIL" : "result: OK");
    return fails != 0;
}
