/*
 * ruml's vDSO: the image every guest address space gets at AT_SYSINFO_EHDR.
 *
 * It reads the vvar page the kernel keeps (one page just below the image)
 * and the CPU's time-stamp counter: time = base + (tsc - tsc_base) * mult.
 * The kernel's own clock_gettime evaluates the same formula over the same
 * page, so the two always agree. When the page says the TSC is unusable, a
 * clock is not one of ours, or the page is being rewritten for too long,
 * these functions make the real system call (which traps into ruml).
 *
 * Built by crates/kernel/build.rs with the host's gcc; freestanding, no
 * relocations, no data, no calls. The layout of struct vvar is mirrored in
 * crates/kernel/src/vdso/mod.rs (VvarPage).
 */
typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;

struct vvar {
	u32 seq;        /* odd while the kernel rewrites the page */
	u32 flags;      /* VVAR_TSC: the TSC clock below is valid */
	u64 tsc_base;   /* TSC value at which mono_base was taken */
	u64 mult;       /* nanoseconds per TSC cycle, 32.32 fixed point */
	u64 mono_base;  /* CLOCK_MONOTONIC in ns at tsc_base */
	s64 real_off;   /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
	s64 boot_off;   /* CLOCK_BOOTTIME - CLOCK_MONOTONIC, ns */
	u64 coarse_res; /* resolution of the *_COARSE clocks, ns */
	u64 hres_res;   /* resolution of the others, ns */
};

#define VVAR_TSC 1u
#define VVAR_SIZE 4096
#define SPIN_LIMIT 4096

struct timespec_k { s64 tv_sec; s64 tv_nsec; };
struct timeval_k { s64 tv_sec; s64 tv_usec; };
struct timezone_k { int tz_minuteswest; int tz_dsttime; };

extern const char __ehdr_start[] __attribute__((visibility("hidden")));

static inline const volatile struct vvar *vvar(void)
{
	const char *p = __ehdr_start;
	/* Hide where p came from: the page lies outside the image. */
	__asm__("" : "+r"(p));
	return (const volatile struct vvar *)(p - VVAR_SIZE);
}

static inline long sys2(long nr, long a, long b)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(nr), "D"(a), "S"(b)
			 : "rcx", "r11", "memory");
	return ret;
}

static inline long sys3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "0"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

static inline u64 rdtsc_ordered(void)
{
	u32 lo, hi;
	__asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) :: "memory");
	return ((u64)hi << 32) | lo;
}

/* Reads one clock in ns; 0 on success, -1 if the system call must serve it. */
static int read_ns(int clk, u64 *out)
{
	const volatile struct vvar *v = vvar();
	int coarse = 0;
	for (int spins = 0; spins < SPIN_LIMIT; spins++) {
		u32 seq = v->seq;
		__asm__ volatile("" ::: "memory");
		if (seq & 1) {
			__asm__ volatile("pause");
			continue;
		}
		if (!(v->flags & VVAR_TSC))
			return -1;
		u64 base = v->tsc_base, mult = v->mult, ns = v->mono_base;
		s64 off;
		switch (clk) {
		case 0: off = v->real_off; break;            /* REALTIME */
		case 1: off = 0; break;                      /* MONOTONIC */
		case 5: off = v->real_off; coarse = 1; break; /* REALTIME_COARSE */
		case 6: off = 0; coarse = 1; break;          /* MONOTONIC_COARSE */
		case 7: off = v->boot_off; break;            /* BOOTTIME */
		default: return -1;
		}
		u64 res = v->coarse_res;
		u64 t = rdtsc_ordered();
		__asm__ volatile("" ::: "memory");
		if (v->seq != seq)
			continue;
		u64 d = t > base ? t - base : 0;
		ns += (u64)(((unsigned __int128)d * mult) >> 32);
		s64 val = (s64)ns + off;
		if (val < 0)
			return -1;
		if (coarse && res > 1)
			val -= val % (s64)res;
		*out = (u64)val;
		return 0;
	}
	return -1;
}

int __vdso_clock_gettime(int clk, struct timespec_k *ts)
{
	u64 ns;
	if (read_ns(clk, &ns))
		return (int)sys2(228, clk, (long)ts);
	ts->tv_sec = (s64)(ns / 1000000000ul);
	ts->tv_nsec = (s64)(ns % 1000000000ul);
	return 0;
}

int __vdso_gettimeofday(struct timeval_k *tv, struct timezone_k *tz)
{
	u64 ns;
	if (read_ns(0, &ns))
		return (int)sys2(96, (long)tv, (long)tz);
	if (tv) {
		tv->tv_sec = (s64)(ns / 1000000000ul);
		tv->tv_usec = (s64)(ns % 1000000000ul / 1000);
	}
	if (tz) {
		tz->tz_minuteswest = 0;
		tz->tz_dsttime = 0;
	}
	return 0;
}

s64 __vdso_time(s64 *t)
{
	u64 ns;
	if (read_ns(0, &ns))
		return sys2(201, (long)t, 0);
	s64 s = (s64)(ns / 1000000000ul);
	if (t)
		*t = s;
	return s;
}

int __vdso_clock_getres(int clk, struct timespec_k *res)
{
	const volatile struct vvar *v = vvar();
	u64 r;
	if (!(v->flags & VVAR_TSC))
		return (int)sys2(229, clk, (long)res);
	switch (clk) {
	case 0: case 1: case 7: r = v->hres_res; break;
	case 5: case 6: r = v->coarse_res; break;
	default: return (int)sys2(229, clk, (long)res);
	}
	if (res) {
		res->tv_sec = (s64)(r / 1000000000ul);
		res->tv_nsec = (s64)(r % 1000000000ul);
	}
	return 0;
}

/*
 * The host CPU this thread runs on, as the host kernel encodes it in the
 * limit of its per-CPU segment (node << 12 | cpu); the kernel's getcpu
 * system call reads the same.
 */
int __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
	u32 p = 0, ok = 0;
	(void)unused;
	__asm__ volatile("lsl %[seg], %[p]\n\tsetz %b[ok]"
			 : [p] "+r"(p), [ok] "+q"(ok) : [seg] "r"(0x7bu));
	if (!ok)
		return (int)sys3(309, (long)cpu, (long)node, 0);
	if (cpu)
		*cpu = p & 0xfff;
	if (node)
		*node = p >> 12;
	return 0;
}

int clock_gettime(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval_k *, struct timezone_k *) __attribute__((weak, alias("__vdso_gettimeofday")));
s64 time(s64 *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_getres")));
int getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));

/* The kernel version, as Linux's vDSO notes it (glibc may read it). */
__attribute__((section(".note.Linux"), aligned(4), used))
static const struct {
	u32 namesz, descsz, type;
	char name[8];
	u32 desc;
} linux_version_note = { 6, 4, 0, "Linux", (6u << 16) | (1u << 8) | 0 };
