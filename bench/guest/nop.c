/* The static program that fork_exec_wait executes: it exits at once. */
int main(void) { return 0; }
