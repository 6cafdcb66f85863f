/* Signal delivery and sigreturn preserve the FPU/SSE/AVX state: the main
 * code holds known values in xmm0-15 (and ymm/zmm/k registers, x87 stack
 * when the CPU has them) across a kill() issued straight from inline asm;
 * the handler, which must start with a clean FPU state, clobbers everything
 * (its own asm, printf of doubles, big memsets, another rounding mode); after
 * sigreturn every register is intact, except xmm15 which the handler changed
 * through the ucontext on purpose, and the MXCSR/x87 rounding mode set with
 * fesetround survives. (fesetround lives in libm and the harness links no
 * -lm, so it is done here by hand: x87 control word and MXCSR, as glibc.) */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
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


/* Rounding modes in x87 control-word encoding, as <fenv.h> on x86_64. */
#define FE_TONEAREST 0
#define FE_DOWNWARD 0x400
#define FE_UPWARD 0x800
#define FE_TOWARDZERO 0xc00

static int fesetround(int mode) {
    uint16_t cw;
    uint32_t mx;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    cw = (uint16_t)((cw & ~0xc00) | mode);
    __asm__ volatile("fldcw %0" ::"m"(cw));
    __asm__ volatile("stmxcsr %0" : "=m"(mx));
    mx = (mx & ~0x6000u) | ((uint32_t)mode << 3);
    __asm__ volatile("ldmxcsr %0" ::"m"(mx));
    return 0;
}

/* The mode, if the x87 and SSE units agree; -1 otherwise. */
static int fegetround(void) {
    uint16_t cw;
    uint32_t mx;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    __asm__ volatile("stmxcsr %0" : "=m"(mx));
    int x = cw & 0xc00, m = (int)((mx & 0x6000) >> 3);
    return x == m ? x : -1;
}

static int have_avx, have_avx512;

/* What the handler saw. */
static volatile int h_runs;
static uint8_t h_entry_xmm0[16], h_entry_xmm7[16];
static volatile uint32_t h_entry_mxcsr;
static volatile uint32_t h_uc_mxcsr;
static volatile uint16_t h_uc_cwd;
static uint8_t h_uc_xmm0[16];
static volatile int h_modify_xmm15;
static char h_text[128];
static volatile double h_sink;

static const uint8_t new_xmm15[16] = {0x5a, 0xa5, 0x5a, 0xa5, 1, 2, 3, 4,
                                      5,    6,    7,    8,    9, 10, 11, 12};

static void clobber_everything(void) {
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n\t"
                     "pcmpeqd %%xmm1, %%xmm1\n\t"
                     "pcmpeqd %%xmm2, %%xmm2\n\t"
                     "pcmpeqd %%xmm3, %%xmm3\n\t"
                     "pcmpeqd %%xmm4, %%xmm4\n\t"
                     "pcmpeqd %%xmm5, %%xmm5\n\t"
                     "pcmpeqd %%xmm6, %%xmm6\n\t"
                     "pcmpeqd %%xmm7, %%xmm7\n\t"
                     "pcmpeqd %%xmm8, %%xmm8\n\t"
                     "pcmpeqd %%xmm9, %%xmm9\n\t"
                     "pcmpeqd %%xmm10, %%xmm10\n\t"
                     "pcmpeqd %%xmm11, %%xmm11\n\t"
                     "pcmpeqd %%xmm12, %%xmm12\n\t"
                     "pcmpeqd %%xmm13, %%xmm13\n\t"
                     "pcmpeqd %%xmm14, %%xmm14\n\t"
                     "pcmpeqd %%xmm15, %%xmm15\n\t"
                     "fldpi\n\tfldpi\n\tfldpi\n\tfldpi\n\t"
                     "fstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t" ::
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                           "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                           "xmm12", "xmm13", "xmm14", "xmm15", "memory");
    if (have_avx)
        __asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
                         "vpcmpeqd %%ymm5, %%ymm5, %%ymm5\n\t"
                         "vpcmpeqd %%ymm9, %%ymm9, %%ymm9\n\t"
                         "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t"
                         "vzeroupper\n\t"
                         "vpcmpeqd %%ymm1, %%ymm1, %%ymm1\n\t"
                         "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n\t" ::
                             : "xmm0", "xmm1", "xmm5", "xmm9", "xmm14", "xmm15");
    if (have_avx512)
        __asm__ volatile("vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\t"
                         "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
                         "vpternlogd $0xff, %%zmm3, %%zmm3, %%zmm3\n\t"
                         "kxnorw %%k1, %%k1, %%k1\n\t"
                         "kxnorw %%k7, %%k7, %%k7\n\t"
                         "vzeroupper\n\t" ::
                             : "xmm3", "memory");
}

static void handler(int sig, siginfo_t *si, void *ucv) {
    /* First thing: what FPU state did the handler start with? */
    uint32_t mx;
    __asm__ volatile("movdqu %%xmm0, %0\n\t"
                     "movdqu %%xmm7, %1\n\t"
                     "stmxcsr %2"
                     : "=m"(h_entry_xmm0), "=m"(h_entry_xmm7), "=m"(mx));
    h_entry_mxcsr = mx;
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    h_runs++;
    if (uc->uc_mcontext.fpregs) {
        h_uc_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
        h_uc_cwd = uc->uc_mcontext.fpregs->cwd;
        memcpy(h_uc_xmm0, &uc->uc_mcontext.fpregs->_xmm[0], 16);
        if (h_modify_xmm15)
            memcpy(&uc->uc_mcontext.fpregs->_xmm[15], new_xmm15, 16);
    }
    /* Now wreck the FPU state. */
    fesetround(FE_TOWARDZERO);
    clobber_everything();
    volatile double a = 2.0, b = 3.0;
    snprintf(h_text, sizeof h_text, "%.6f %.3e %g", a / b, a * 1e300 * b,
             a - b / 7.0);
    static char big[1 << 20];
    memset(big, 0x77, sizeof big);
    memmove(big + 1, big, sizeof big - 1);
    h_sink = (double)big[12345] * a;
    clobber_everything();
}

static void fill(uint8_t *p, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7 + (i >> 3));
}

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    __builtin_cpu_init();
    have_avx = __builtin_cpu_supports("avx");
    have_avx512 = __builtin_cpu_supports("avx512f");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);

    CHECK(fesetround(FE_UPWARD) == 0, "fesetround(FE_UPWARD)");
    long pid = getpid();

    /* --- SSE: xmm0-15 and two x87 stack slots across kill() --- */
    static uint8_t in[16][16], out[16][16];
    for (int i = 0; i < 16; i++)
        fill(in[i], 16, (uint8_t)(i * 16 + 1));
    double x87_in[2] = {1.0 / 3.0, -12345.678}, x87_out[2] = {0, 0};
    long rax = SYS_kill;
    h_modify_xmm15 = 1;
    __asm__ volatile(
        "fldl 8(%[x87in])\n\t"
        "fldl 0(%[x87in])\n\t"
        "movdqu 0(%[in]), %%xmm0\n\t"
        "movdqu 16(%[in]), %%xmm1\n\t"
        "movdqu 32(%[in]), %%xmm2\n\t"
        "movdqu 48(%[in]), %%xmm3\n\t"
        "movdqu 64(%[in]), %%xmm4\n\t"
        "movdqu 80(%[in]), %%xmm5\n\t"
        "movdqu 96(%[in]), %%xmm6\n\t"
        "movdqu 112(%[in]), %%xmm7\n\t"
        "movdqu 128(%[in]), %%xmm8\n\t"
        "movdqu 144(%[in]), %%xmm9\n\t"
        "movdqu 160(%[in]), %%xmm10\n\t"
        "movdqu 176(%[in]), %%xmm11\n\t"
        "movdqu 192(%[in]), %%xmm12\n\t"
        "movdqu 208(%[in]), %%xmm13\n\t"
        "movdqu 224(%[in]), %%xmm14\n\t"
        "movdqu 240(%[in]), %%xmm15\n\t"
        "syscall\n\t"
        "movdqu %%xmm0, 0(%[out])\n\t"
        "movdqu %%xmm1, 16(%[out])\n\t"
        "movdqu %%xmm2, 32(%[out])\n\t"
        "movdqu %%xmm3, 48(%[out])\n\t"
        "movdqu %%xmm4, 64(%[out])\n\t"
        "movdqu %%xmm5, 80(%[out])\n\t"
        "movdqu %%xmm6, 96(%[out])\n\t"
        "movdqu %%xmm7, 112(%[out])\n\t"
        "movdqu %%xmm8, 128(%[out])\n\t"
        "movdqu %%xmm9, 144(%[out])\n\t"
        "movdqu %%xmm10, 160(%[out])\n\t"
        "movdqu %%xmm11, 176(%[out])\n\t"
        "movdqu %%xmm12, 192(%[out])\n\t"
        "movdqu %%xmm13, 208(%[out])\n\t"
        "movdqu %%xmm14, 224(%[out])\n\t"
        "movdqu %%xmm15, 240(%[out])\n\t"
        "fstpl 0(%[x87out])\n\t"
        "fstpl 8(%[x87out])\n\t"
        : "+a"(rax)
        : [in] "r"(in), [out] "r"(out), [x87in] "r"(x87_in),
          [x87out] "r"(x87_out), "D"(pid), "S"((long)SIGUSR1)
        : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
          "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
          "xmm13", "xmm14", "xmm15", "st", "st(1)");
    h_modify_xmm15 = 0;
    CHECK(rax == 0 && h_runs == 1, "kill from asm returned 0, handler ran once");
    CHECK(all_zero(h_entry_xmm0, 16) && all_zero(h_entry_xmm7, 16),
          "handler starts with zeroed xmm registers");
    printf("handler entry MXCSR: %#x\n", h_entry_mxcsr & 0xffc0);
    CHECK((h_entry_mxcsr & 0xffc0) == 0x1f80,
          "handler starts with the default MXCSR (round to nearest)");
    CHECK((h_uc_mxcsr & 0x6000) == 0x4000, "ucontext MXCSR says round up");
    CHECK((h_uc_cwd & 0x0c00) == 0x0800, "ucontext x87 control word says round up");
    CHECK(memcmp(h_uc_xmm0, in[0], 16) == 0, "ucontext holds the interrupted xmm0");
    printf("handler computed: %s\n", h_text);
    int intact = 1;
    for (int i = 0; i < 15; i++)
        if (memcmp(in[i], out[i], 16) != 0) {
            printf("xmm%d changed\n", i);
            intact = 0;
        }
    CHECK(intact, "xmm0-14 intact after sigreturn");
    CHECK(memcmp(out[15], new_xmm15, 16) == 0,
          "xmm15 holds the value the handler wrote into the ucontext");
    CHECK(x87_out[0] == x87_in[0] && x87_out[1] == x87_in[1],
          "x87 stack intact after sigreturn");
    CHECK(fegetround() == FE_UPWARD, "rounding mode (FE_UPWARD) survives");
    volatile double one = 1.0, three = 3.0;
    fesetround(FE_TONEAREST);
    double near = one / three;
    fesetround(FE_UPWARD);
    double up = one / three;
    CHECK(up > near, "and still rounds upward");

    /* --- AVX: full ymm0-15 --- */
    if (have_avx) {
        static uint8_t yin[16][32], yout[16][32];
        for (int i = 0; i < 16; i++)
            fill(yin[i], 32, (uint8_t)(i * 32 + 3));
        rax = SYS_kill;
        __asm__ volatile(
            "vmovdqu 0(%[in]), %%ymm0\n\t"
            "vmovdqu 32(%[in]), %%ymm1\n\t"
            "vmovdqu 64(%[in]), %%ymm2\n\t"
            "vmovdqu 96(%[in]), %%ymm3\n\t"
            "vmovdqu 128(%[in]), %%ymm4\n\t"
            "vmovdqu 160(%[in]), %%ymm5\n\t"
            "vmovdqu 192(%[in]), %%ymm6\n\t"
            "vmovdqu 224(%[in]), %%ymm7\n\t"
            "vmovdqu 256(%[in]), %%ymm8\n\t"
            "vmovdqu 288(%[in]), %%ymm9\n\t"
            "vmovdqu 320(%[in]), %%ymm10\n\t"
            "vmovdqu 352(%[in]), %%ymm11\n\t"
            "vmovdqu 384(%[in]), %%ymm12\n\t"
            "vmovdqu 416(%[in]), %%ymm13\n\t"
            "vmovdqu 448(%[in]), %%ymm14\n\t"
            "vmovdqu 480(%[in]), %%ymm15\n\t"
            "syscall\n\t"
            "vmovdqu %%ymm0, 0(%[out])\n\t"
            "vmovdqu %%ymm1, 32(%[out])\n\t"
            "vmovdqu %%ymm2, 64(%[out])\n\t"
            "vmovdqu %%ymm3, 96(%[out])\n\t"
            "vmovdqu %%ymm4, 128(%[out])\n\t"
            "vmovdqu %%ymm5, 160(%[out])\n\t"
            "vmovdqu %%ymm6, 192(%[out])\n\t"
            "vmovdqu %%ymm7, 224(%[out])\n\t"
            "vmovdqu %%ymm8, 256(%[out])\n\t"
            "vmovdqu %%ymm9, 288(%[out])\n\t"
            "vmovdqu %%ymm10, 320(%[out])\n\t"
            "vmovdqu %%ymm11, 352(%[out])\n\t"
            "vmovdqu %%ymm12, 384(%[out])\n\t"
            "vmovdqu %%ymm13, 416(%[out])\n\t"
            "vmovdqu %%ymm14, 448(%[out])\n\t"
            "vmovdqu %%ymm15, 480(%[out])\n\t"
            "vzeroupper\n\t"
            : "+a"(rax)
            : [in] "r"(yin), [out] "r"(yout), "D"(pid), "S"((long)SIGUSR1)
            : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
              "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
              "xmm13", "xmm14", "xmm15");
        int ok = rax == 0 && h_runs == 2;
        for (int i = 0; i < 16; i++)
            if (memcmp(yin[i], yout[i], 32) != 0) {
                printf("ymm%d changed\n", i);
                ok = 0;
            }
        CHECK(ok, "ymm0-15 intact after sigreturn");
    } else {
        printf("ymm: no AVX on this CPU\n");
    }

    /* --- AVX-512: zmm0, zmm16-31 (EVEX-only registers) and opmask k1-k7 --- */
    if (have_avx512) {
        static uint8_t zin[4][64], zout[4][64];
        uint16_t kin[2] = {0x1234, 0xbeef}, kout[2] = {0, 0};
        for (int i = 0; i < 4; i++)
            fill(zin[i], 64, (uint8_t)(i * 64 + 5));
        rax = SYS_kill;
        __asm__ volatile(
            "vmovdqu64 0(%[in]), %%zmm0\n\t"
            "vmovdqu64 64(%[in]), %%zmm16\n\t"
            "vmovdqu64 128(%[in]), %%zmm24\n\t"
            "vmovdqu64 192(%[in]), %%zmm31\n\t"
            "kmovw 0(%[kin]), %%k1\n\t"
            "kmovw 2(%[kin]), %%k7\n\t"
            "syscall\n\t"
            "vmovdqu64 %%zmm0, 0(%[out])\n\t"
            "vmovdqu64 %%zmm16, 64(%[out])\n\t"
            "vmovdqu64 %%zmm24, 128(%[out])\n\t"
            "vmovdqu64 %%zmm31, 192(%[out])\n\t"
            "kmovw %%k1, 0(%[kout])\n\t"
            "kmovw %%k7, 2(%[kout])\n\t"
            "vzeroupper\n\t"
            : "+a"(rax)
            : [in] "r"(zin), [out] "r"(zout), [kin] "r"(kin), [kout] "r"(kout),
              "D"(pid), "S"((long)SIGUSR1)
            : "rcx", "r11", "memory", "xmm0"); /* zmm16-31: unknown to gcc without -mavx512f */
        int ok = rax == 0;
        for (int i = 0; i < 4; i++)
            if (memcmp(zin[i], zout[i], 64) != 0) {
                printf("zmm register #%d changed\n", i);
                ok = 0;
            }
        if (kin[0] != kout[0] || kin[1] != kout[1]) {
            printf("opmask registers changed\n");
            ok = 0;
        }
        CHECK(ok, "zmm0/16/24/31 and k1/k7 intact after sigreturn");
    } else {
        printf("zmm: no AVX-512 on this CPU\n");
    }

    /* --- plain C: volatile doubles live across raise() --- */
    volatile double d1 = 3.141592653589793, d2 = -2.718281828459045;
    double r1 = d1 * 7.0, r2 = d2 / 3.0;
    raise(SIGUSR1);
    CHECK(r1 == d1 * 7.0 && r2 == d2 / 3.0 && fegetround() == FE_UPWARD,
          "doubles and rounding across raise()");

    printf("result: %s\n", failures ? "FAIL" : "OK");
    return failures ? 1 : 0;
}
