/* A program for gdb to debug (crates/ruml/tests/debugging.rs): natively
 * and inside ruml, the same gdb commands must print the same transcript. */
#include <stdio.h>
#include <unistd.h>

int counter;

__attribute__((noinline)) static int square(int v) {
    int sq = v * v;
    return sq;
}

__attribute__((noinline)) static int compute(int n) {
    int local = n * 10;
    local += square(n);
    counter++;
    return local;
}

int main(int argc, char **argv) {
    int total = 0;
    for (int i = 1; i <= 3; i++)
        total += compute(i);
    getppid();
    printf("total %d counter %d\n", total, counter);
    fflush(stdout);
    if (argc > 1) {
        /* Wait to be attached to (gdb -p): the tracer ends us. */
        for (;;)
            pause();
    }
    return total % 50;
}
