/*
 * segv: a store through a wild pointer. The process must die of SIGSEGV
 * (natively: killed by signal 11; under ruml: ruml exits 139) and print
 * nothing after the faulting store.
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("before the fault\n");
    fflush(stdout);
    *(volatile int *)0x10 = 1;
    /* Not reached. write(2) directly, so nothing can sit in a buffer. */
    static const char msg[] = "after the fault: NOT REACHED\n";
    write(1, msg, sizeof msg - 1);
    return 0;
}
