/*
 * hello_auxv: argv, environment and the auxiliary vector, as far as they
 * must be the same under ruml as on the host.
 *
 * Prints nothing that legitimately differs between two runs (pids,
 * addresses, times, AT_RANDOM's bytes). Built by the test harness in three
 * flavours; the static non-PIE one is compiled with -DRUML_STATIC_NOPIE and
 * also prints AT_ENTRY, which is then a link-time constant.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;

static const char *ptype_name(uint32_t t)
{
    switch (t) {
    case PT_NULL: return "PT_NULL";
    case PT_LOAD: return "PT_LOAD";
    case PT_DYNAMIC: return "PT_DYNAMIC";
    case PT_INTERP: return "PT_INTERP";
    case PT_NOTE: return "PT_NOTE";
    case PT_PHDR: return "PT_PHDR";
    case PT_TLS: return "PT_TLS";
    case PT_GNU_EH_FRAME: return "PT_GNU_EH_FRAME";
    case PT_GNU_STACK: return "PT_GNU_STACK";
    case PT_GNU_RELRO: return "PT_GNU_RELRO";
    default: return "other";
    }
}

/* Program headers of the executable as the file on disk has them. */
static int file_phdrs(const char *path, ElfW(Phdr) *out, int max, ElfW(Ehdr) *eh)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    if (pread(fd, eh, sizeof *eh, 0) != (ssize_t)sizeof *eh || eh->e_phnum > max) {
        close(fd);
        return -1;
    }
    ssize_t want = (ssize_t)eh->e_phnum * (ssize_t)sizeof(ElfW(Phdr));
    ssize_t got = pread(fd, out, (size_t)want, (off_t)eh->e_phoff);
    close(fd);
    return got == want ? eh->e_phnum : -1;
}

int main(int argc, char **argv)
{
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=\"%s\"\n", i, argv[i]);
    printf("argv[argc]=%s\n", argv[argc] == NULL ? "NULL" : "non-NULL");
    for (char **e = environ; *e; e++)
        printf("env: %s\n", *e);

    printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
    printf("AT_UID=%lu\n", getauxval(AT_UID));
    printf("AT_EUID=%lu\n", getauxval(AT_EUID));
    printf("AT_GID=%lu\n", getauxval(AT_GID));
    printf("AT_EGID=%lu\n", getauxval(AT_EGID));
    printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
    printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
    printf("AT_PHNUM=%lu\n", getauxval(AT_PHNUM));
    printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
    printf("AT_HWCAP=%#lx\n", getauxval(AT_HWCAP));
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    printf("AT_PLATFORM=%s\n", platform ? platform : "(null)");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN=%s\n", execfn ? execfn : "(null)");
    printf("AT_EXECFN==argv[0]: %s\n",
           execfn && strcmp(execfn, argv[0]) == 0 ? "yes" : "no");
#ifdef RUML_STATIC_NOPIE
    printf("AT_ENTRY=%#lx\n", getauxval(AT_ENTRY));
#endif
    /* A static executable has no interpreter (AT_BASE 0); a dynamic one has. */
    printf("AT_BASE nonzero: %s\n", getauxval(AT_BASE) ? "yes" : "no");

    /* AT_RANDOM: 16 readable bytes; their values differ between runs. */
    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    if (rnd == NULL) {
        printf("AT_RANDOM: null\n");
    } else {
        volatile unsigned sum = 0;
        int allzero = 1;
        for (int i = 0; i < 16; i++) {
            sum += rnd[i];
            if (rnd[i])
                allzero = 0;
        }
        (void)sum;
        printf("AT_RANDOM: non-null, 16 bytes readable, all zero: %s\n",
               allzero ? "yes" : "no");
    }

    /* AT_PHDR must point at this executable's program header table. */
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    unsigned long phnum = getauxval(AT_PHNUM);
    if (ph == NULL || phnum == 0 || phnum > 64) {
        printf("AT_PHDR: invalid (phdr null or bad phnum)\n");
    } else {
        int loads = 0;
        for (unsigned long i = 0; i < phnum; i++)
            if (ph[i].p_type == PT_LOAD)
                loads++;
        printf("AT_PHDR: phdr[0].p_type=%s\n", ptype_name(ph[0].p_type));
        printf("AT_PHDR: phdr[0] is PT_PHDR or PT_LOAD: %s\n",
               ph[0].p_type == PT_PHDR || ph[0].p_type == PT_LOAD ? "yes" : "no");
        printf("AT_PHDR: PT_LOAD count=%d\n", loads);

        ElfW(Phdr) fph[64];
        ElfW(Ehdr) eh;
        int n = file_phdrs(argv[0], fph, 64, &eh);
        if (n < 0) {
            printf("file phdrs: unreadable\n");
        } else {
            int floads = 0, same = (unsigned long)n == phnum;
            for (int i = 0; i < n; i++) {
                if (fph[i].p_type == PT_LOAD)
                    floads++;
                if (same && (fph[i].p_type != ph[i].p_type ||
                             fph[i].p_vaddr != ph[i].p_vaddr ||
                             fph[i].p_memsz != ph[i].p_memsz))
                    same = 0;
            }
            printf("file phdrs: e_phnum=%d PT_LOAD count=%d\n", n, floads);
            printf("AT_PHDR table matches the file's: %s\n", same ? "yes" : "no");
#ifdef RUML_STATIC_NOPIE
            printf("AT_ENTRY==e_entry: %s\n",
                   getauxval(AT_ENTRY) == eh.e_entry ? "yes" : "no");
#endif
        }
    }
    return 0;
}
