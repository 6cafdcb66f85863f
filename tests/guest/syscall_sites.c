/* System calls from each site shape the seccomp backend's census counts
 * (crates/host/src/patch.rs): `mov $nr,%eax; syscall`, `mov $nr,%rax;
 * syscall`, glibc's syscall(3) and `mov $imm,%edi; syscall` (the number
 * set before), each N times from one site, with
 * register preservation checked around the inline ones (everything but
 * rax, rcx and r11 kept, as Linux does). Prints what each call returned
 * so that the run can be compared with a native one.
 * Usage: syscall_sites N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static long mov_eax_getppid(void)
{
    long r;
    long rdi = 0x1111, rsi = 0x2222, rdx = 0x3333, r8 = 0x8888, r9 = 0x9999, r10 = 0xaaaa;
    register long xr8 __asm__("r8") = r8;
    register long xr9 __asm__("r9") = r9;
    register long xr10 __asm__("r10") = r10;
    __asm__ volatile("mov $110, %%eax\n\tsyscall"
                     : "=a"(r), "+D"(rdi), "+S"(rsi), "+d"(rdx), "+r"(xr8), "+r"(xr9), "+r"(xr10)
                     :
                     : "rcx", "r11", "memory");
    if (rdi != 0x1111 || rsi != 0x2222 || rdx != 0x3333 || xr8 != r8 || xr9 != r9 || xr10 != r10)
        return -1000;
    return r;
}

static long mov_rax_getppid(void)
{
    long r;
    long rbx = 0xb0b0;
    __asm__ volatile("mov $110, %%rax\n\tsyscall"
                     : "=a"(r), "+b"(rbx)
                     :
                     : "rcx", "r11", "memory");
    if (rbx != 0xb0b0)
        return -1000;
    return r;
}

static long mov_edi_getppid(void)
{
    long r;
    long rdi, rsi = 0x2222, rdx = 0x3333;
    register long xr9 __asm__("r9") = 0x9999;
    __asm__ volatile("mov $110, %%eax\n\tmov $1, %%edi\n\tsyscall"
                     : "=a"(r), "=D"(rdi), "+S"(rsi), "+d"(rdx), "+r"(xr9)
                     :
                     : "rcx", "r11", "memory");
    if (rdi != 1 || rsi != 0x2222 || rdx != 0x3333 || xr9 != 0x9999)
        return -1000;
    return r;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100;
    long want = getppid();
    long bad[4] = {0, 0, 0, 0};
    for (long i = 0; i < n; i++) {
        bad[0] += mov_eax_getppid() != want;
        bad[1] += mov_rax_getppid() != want;
        bad[2] += syscall(SYS_getppid) != want;
        bad[3] += mov_edi_getppid() != want;
    }
    printf("mov_eax %ld wrong of %ld\n", bad[0], n);
    printf("mov_rax %ld wrong of %ld\n", bad[1], n);
    printf("syscall_fn %ld wrong of %ld\n", bad[2], n);
    printf("mov_edi %ld wrong of %ld\n", bad[3], n);
    return bad[0] || bad[1] || bad[2] || bad[3];
}
