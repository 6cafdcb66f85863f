#!/usr/bin/env python3
"""ruml's benchmark driver (started by bench/run, inside a private mount
namespace, as root).

Builds the bench root (busybox-static, the static benchmark programs, the
host's /usr bind-mounted read-only for the build benchmark, a tmpfs on
/tmp), runs the same guest suite in every system compared — native (a chroot
of the root), ruml (one column per backend, by mode=), UML 6.1, gVisor
(runsc, ptrace platform) and proot — times boot -> /bin/true -> exit of each
from outside with hyperfine, and prints a table of medians with each cell's
ratio to native from the same run. The full mode also writes
docs/benchmarks.md and docs/benchmarks.png; the quick mode (the CI smoke
test) checks that every system ran every program and reported a figure, and
asserts nothing about timings.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
GUEST = os.path.join(BENCH, "guest")

# (key, label, unit, lower_is_better, ruml goal as a ratio to native or None)
ROWS = [
    ("getppid", "null system call (getppid loop)", "ns", True, 3.0),
    ("fork_exit_wait", "fork + exit + wait", "µs", True, None),
    ("fork_exec_wait", "fork + exec + wait (static program)", "µs", True, 2.0),
    ("page_fault", "first-touch page fault (anonymous, per page)", "ns", True, 1.3),
    ("pipe_rtt", "pipe round trip (two processes)", "µs", True, 2.0),
    ("futex_rtt", "futex round trip (two threads)", "µs", True, 2.0),
    ("thread_create_join", "thread create + join", "µs", True, None),
    ("open_close", "open + close of an existing file", "µs", True, None),
    ("stat", "stat of an existing file", "µs", True, None),
    ("tcp_rr", "TCP request/response over 127.0.0.1, 1 byte", "µs", True, None),
    ("tcp_stream", "TCP throughput over 127.0.0.1, 64 KiB writes", "MiB/s", False, 2.0),
    ("tmpfs_write", "tmpfs write, 64 MiB in 64 KiB blocks", "MiB/s", False, None),
    ("tmpfs_read", "tmpfs read, 64 MiB in 64 KiB blocks", "MiB/s", False, None),
    ("disk_write", "disk: sequential write + fsync, 64 MiB (ruml, UML: ext4 ubd disk)", "MiB/s", False, 1.5),
    ("disk_read", "disk: sequential read of that file", "MiB/s", False, 1.5),
    ("disk_files", "disk: small file create+write, stat, unlink, sync (per file)", "µs", True, 1.5),
    ("disk_randwrite", "disk: random 4 KiB write in that 64 MiB file, fsync every 64", "µs", True, 1.5),
    ("disk_randread", "disk: random 4 KiB read of that file", "µs", True, 1.5),
    ("disk_untar", "disk: untar of a source tree (Lua ×32: 1,900 files, 30 MiB) + sync", "s", True, 1.5),
    ("boot", "boot → /bin/true → exit", "ms", True, None),
    ("build", "real build: Lua 5.4, 33 C files, make -j2", "s", True, 1.15),
]
ROW_KEYS = [r[0] for r in ROWS]
BENCH_LINE = re.compile(r"^BENCH [a-z_]+ (n/a( .*)?|[0-9.e+-]+ (ns|us|MiB/s|s))$")

# Cells a ruml column may leave n/a without failing the smoke test (they are
# printed as "not yet"): what ruml cannot run yet. Remove a key once ruml
# runs it, so that the smoke test guards it from then on.
RUML_NOT_YET: set = set()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def out(cmd, default=""):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return default


# ---------------------------------------------------------------- the root

def is_static(path):
    """True if the ELF file has no PT_INTERP program header."""
    import struct
    with open(path, "rb") as f:
        h = f.read(64)
        if h[:4] != b"\x7fELF" or h[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", h, 32)
        phentsize, phnum = struct.unpack_from("<HH", h, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", ph, i * phentsize)[0] != 3 for i in range(phnum))


def build_root(work, lua_src):
    """The bench root: busybox-static as /bin, the benchmark programs in
    /bench, Lua's sources in /bench/lua, the host's /usr (gcc, make,
    binutils, libc) bind-mounted read-only by mount_root()."""
    root = os.path.join(work, "root")
    for d in ["bin", "bench", "tmp", "proc", "dev", "sys", "etc", "usr", "root"]:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    for link, target in [("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "bin")]:
        p = os.path.join(root, link)
        if not os.path.islink(p):
            os.symlink(target, p)
    # busybox-static and its applets.
    bb = "/bin/busybox"
    if not os.path.exists(bb) or not is_static(bb):
        raise SystemExit(f"{bb} is missing or not static: install busybox-static")
    shutil.copy2(bb, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a == "busybox" or "/" in a:
            continue
        p = os.path.join(root, "bin", a)
        if not os.path.lexists(p):
            os.symlink("busybox", p)
    # A few files that programs look for.
    etc = os.path.join(root, "etc")
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(etc, "group"), "w") as f:
        f.write("root:x:0:\n")
    if os.path.exists("/etc/ld.so.cache"):
        shutil.copy2("/etc/ld.so.cache", os.path.join(etc, "ld.so.cache"))
    # The guest programs, static.
    b = os.path.join(root, "bench")
    cflags = ["-O2", "-static", "-Wall", "-Wextra"]
    sh(["gcc", *cflags, "-o", os.path.join(b, "micro"), os.path.join(GUEST, "micro.c"), "-lpthread"])
    sh(["gcc", *cflags, "-o", os.path.join(b, "nop"), os.path.join(GUEST, "nop.c")])
    shutil.copy2(os.path.join(b, "micro"), os.path.join(b, "boot-true"))
    for f in ["suite.sh", "uml-init"]:
        shutil.copy2(os.path.join(GUEST, f), os.path.join(b, f))
        os.chmod(os.path.join(b, f), 0o755)
    with open(os.path.join(b, "file"), "w") as f:
        f.write("an existing file for open+close and stat\n")
    # Lua's clean tree, copied by the suite into a writable place per build.
    lua = os.path.join(b, "lua")
    shutil.rmtree(lua, ignore_errors=True)
    os.makedirs(lua)
    for name in os.listdir(lua_src):
        if name.endswith((".c", ".h")) and name not in ("lua.c", "luac.c"):
            shutil.copy2(os.path.join(lua_src, name), lua)
    shutil.copy2(os.path.join(GUEST, "main.c"), lua)
    shutil.copy2(os.path.join(GUEST, "lua.mk"), os.path.join(lua, "Makefile"))
    n_c = len([n for n in os.listdir(lua) if n.endswith(".c")])
    source_tarball(lua, os.path.join(b, "src.tar"), TAR_COPIES)
    source_tarball(lua, os.path.join(b, "src-quick.tar"), 2)
    return root, n_c


# The disk benchmark's untar: Lua's tree this many times over.
TAR_COPIES = 32


def source_tarball(lua, path, copies):
    """A tarball of a source tree for the untar row, made offline from
    Lua's sources: `copies` copies, each as src/lua-NN/{src,include,doc}
    (a .h to include/, a .c to src/, the Makefile to doc/), so that the
    untar makes directories as well as files."""
    import tarfile
    names = sorted(os.listdir(lua))
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for c in range(copies):
            top = f"src/lua-{c:02d}"
            for sub in ("", "/src", "/include", "/doc"):
                info = tarfile.TarInfo(top + sub)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.mtime = 1700000000
                t.addfile(info)
            for n in names:
                sub = "include" if n.endswith(".h") else "src" if n.endswith(".c") else "doc"
                src = os.path.join(lua, n)
                info = t.gettarinfo(src, f"{top}/{sub}/{n}")
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 1700000000
                with open(src, "rb") as f:
                    t.addfile(info, f)


def mount_root(root):
    """Mounts, inside bench/run's private mount namespace (they vanish with
    it): the host's /usr read-only, a tmpfs on /tmp, and /dev (for the
    native chroot; the other systems mount their own)."""
    usr = os.path.join(root, "usr")
    sh(["mount", "--bind", "/usr", usr])
    sh(["mount", "-o", "remount,bind,ro", usr])
    sh(["mount", "-t", "tmpfs", "-o", "size=2g,mode=1777", "tmpfs", os.path.join(root, "tmp")])
    sh(["mount", "--bind", "/dev", os.path.join(root, "dev")])
    # The disk benchmark's directory on the host's own filesystem (systems
    # without a disk of their own write there; ruml and UML get an image).
    os.makedirs(os.path.join(root, "bench-disk"), exist_ok=True)


def disk_image(work, key):
    """A fresh ext4 image (the host's mke2fs) for a system's second ubd
    disk: the disk benchmark mounts it inside ruml or UML."""
    img = os.path.join(work, f"disk-{key}.img")
    if os.path.exists(img):
        os.unlink(img)
    with open(img, "wb") as f:
        f.truncate(1 << 30)
    sh(["mke2fs", "-q", "-F", "-t", "ext4", img])
    return img
    # No host /proc in the root: nothing the suite runs needs it natively,
    # and with it UML 6.1 fails to start its processes ("start_userspace :
    # expected SIGSTOP") over and over.


# ---------------------------------------------------------------- systems

class System:
    def __init__(self, key, label, version=""):
        self.key = key
        self.label = label
        self.version = version
        self.unavailable = None  # reason, when the system cannot run at all
        self.error = None        # reason, when it ran but failed
        self.suite_cmd = None    # list
        self.boot_cmd = None     # list
        self.env = {}
        self.results = {}        # key -> list of floats
        self.na = {}             # key -> reason
        self.is_ruml = False
        self.notes = []          # the suite's notes (e.g. no tmpfs mount)
        self.buildlog = []       # the last lines of a failed build
        self.timeout_boot = 60


def pkg_reason(pkg):
    """Why a Debian package's program is missing."""
    distro = out(["sh", "-c", ". /etc/os-release && echo \"$NAME $VERSION_ID\""], "this distribution")
    pol = out(["apt-cache", "policy", pkg])
    if not pol or "Candidate: (none)" in pol:
        return f"unavailable: package {pkg} not in {distro}"
    return f"unavailable: package {pkg} not installed (bench/run installs it)"


def dpkg_version(pkg):
    return out(["dpkg-query", "-W", "-f=${Version}", pkg])


def make_systems(args, root, quick):
    runs = str(args.runs)
    build_runs = str(args.build_runs)
    q = "1" if quick else "0"
    only = "disk" if args.only_disk else "all"
    suite = lambda mount_tmp: ["/bin/sh", "/bench/suite.sh", runs, build_runs, q, mount_tmp, only]
    systems = []

    s = System("native", "native (chroot)", platform.release())
    s.suite_cmd = ["chroot", root] + suite("0")
    s.boot_cmd = ["chroot", root, "/bin/true"]
    systems.append(s)

    ruml = args.ruml
    modes = ["ptrace"]
    if ruml and os.access(ruml, os.X_OK):
        help_text = subprocess.run([ruml, "--help"], capture_output=True, text=True).stdout
        m = re.search(r"mode=([a-z|]+)", help_text)
        if m:
            modes = m.group(1).split("|")
    rev = out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "--", "crates"])
    ver = f"git {rev}" + (" + uncommitted changes" if dirty else "")
    for mode in modes:
        s = System(f"ruml-{mode}", f"ruml (mode={mode})", ver)
        s.is_ruml = True
        mem = "mem=2G"
        if not ruml or not os.access(ruml, os.X_OK):
            s.unavailable = f"unavailable: no ruml binary at {ruml}"
        s.suite_cmd = [ruml, "quiet", mem, f"mode={mode}", f"root={root}",
                       f"ubd1={disk_image(args.work, s.key)}", "--"] + suite("1")
        s.boot_cmd = [ruml, "quiet", f"mode={mode}", f"root={root}", "--", "/bin/true"]
        systems.append(s)

    uml = shutil.which("linux.uml") or shutil.which("linux")
    s = System("uml", "UML 6.1", dpkg_version("user-mode-linux"))
    if not uml:
        s.unavailable = pkg_reason("user-mode-linux")
    common = [uml, "root=/dev/root", "rootfstype=hostfs", f"rootflags={root}", "rw",
              "con0=fd:0,fd:1", "con=null", "quiet"]
    s.suite_cmd = common + ["mem=1G", "init=/bench/uml-init", f"ubd1={disk_image(args.work, 'uml')}",
                            f"BENCH_RUNS={runs}", f"BENCH_BUILD_RUNS={build_runs}", f"BENCH_QUICK={q}",
                            f"BENCH_ONLY={only}"]
    s.boot_cmd = common + ["mem=256M", "init=/bench/boot-true"]
    # UML's physical memory is a file in TMPDIR; tmpfs is what UML wants.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    s.env = {"TMPDIR": shm}
    systems.append(s)

    runsc = shutil.which("runsc")
    s = System("gvisor", "gVisor (runsc, ptrace)", dpkg_version("runsc"))
    if not runsc:
        s.unavailable = pkg_reason("runsc")
    g = [runsc, "--platform=ptrace", "--network=none", "--ignore-cgroups", "do", "-root", root]
    s.suite_cmd = g + suite("1")
    s.boot_cmd = g + ["/bin/true"]
    systems.append(s)

    proot = shutil.which("proot")
    s = System("proot", "proot", dpkg_version("proot"))
    if not proot:
        s.unavailable = pkg_reason("proot")
    p = [proot, "-r", root, "-b", "/dev", "-b", "/proc"]
    s.suite_cmd = p + suite("0")
    s.boot_cmd = p + ["/bin/true"]
    s.env = {"PROOT_TMP_DIR": tempfile.gettempdir()}
    systems.append(s)

    if args.systems:
        wanted = set(args.systems.split(","))
        systems = [s for s in systems if s.key in wanted or s.key.split("-")[0] in wanted or s.key == "native"]
    return systems


def base_env(extra):
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root", "LC_ALL": "C", "TERM": "dumb"}
    env.update(extra)
    return env


def run_cmd(cmd, env, timeout, logf):
    """Runs cmd in its own process group with stdin /dev/null; kills the
    whole group on timeout. Returns (rc or None on timeout, stdout, stderr)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True, cwd="/")
    try:
        o, e = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        o, e = p.communicate()
        rc = None
    o = o.decode(errors="replace").replace("\r", "")
    e = e.decode(errors="replace").replace("\r", "")
    with open(logf, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n--- rc={rc}\n--- stdout\n{o}\n--- stderr\n{e}\n")
    return rc, o, e


def last_error(o, e, rc):
    lines = [l.strip() for l in (e + "\n" + o).splitlines() if l.strip() and not l.startswith(("BENCH", "SUITE"))]
    tail = lines[-1] if lines else ""
    if rc is None:
        return f"timed out{': ' + tail if tail else ''}"
    return f"exit {rc}{': ' + tail[:200] if tail else ''}"


def run_suite(s, timeout, logdir):
    log(f"==> {s.label}: suite")
    t0 = time.time()
    rc, o, e = run_cmd(s.suite_cmd, base_env(s.env), timeout, os.path.join(logdir, f"{s.key}.log"))
    for line in o.splitlines():
        parts = line.split()
        # Only well-formed lines: UML's console may interleave kernel messages.
        if BENCH_LINE.match(line):
            key = parts[1]
            if parts[2] == "n/a":
                s.na.setdefault(key, " ".join(parts[3:]) or "n/a")
            else:
                try:
                    s.results.setdefault(key, []).append(float(parts[2]))
                except ValueError:
                    s.na.setdefault(key, f"bad figure {parts[2]!r}")
        elif line.startswith("SUITE note") or line.startswith("BUILDLOG"):
            log(f"    {line}")
            if line.startswith("SUITE note: "):
                s.notes.append(line[len("SUITE note: "):])
            else:
                s.buildlog.append(line[len("BUILDLOG "):])
    if "SUITE done" not in o:
        s.error = last_error(o, e, rc)
        log(f"    failed: {s.error}")
    log(f"    {time.time() - t0:.1f} s")


def run_boot(s, runs, warmup, logdir, use_hyperfine):
    log(f"==> {s.label}: boot → /bin/true → exit ×{runs}")
    env = base_env(s.env)
    logf = os.path.join(logdir, f"{s.key}.boot.log")
    if use_hyperfine:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
            jf = tf.name
        cmd = ["hyperfine", "-N", "--style", "none", "--runs", str(runs), "--warmup", str(warmup),
               "--export-json", jf, " ".join(s.boot_cmd)]
        rc, o, e = run_cmd(cmd, env, s.timeout_boot * (runs + warmup) + 30, logf)
        try:
            if rc == 0:
                with open(jf) as f:
                    times = json.load(f)["results"][0]["times"]
                s.results["boot"] = [t * 1000 for t in times]
                return
        finally:
            os.unlink(jf)
        s.na["boot"] = last_error(o, e, rc)
        return
    times = []
    for i in range(warmup + runs):
        t0 = time.monotonic()
        rc, o, e = run_cmd(s.boot_cmd, env, s.timeout_boot, logf)
        dt = time.monotonic() - t0
        if rc != 0:
            s.na["boot"] = last_error(o, e, rc)
            return
        if i >= warmup:
            times.append(dt * 1000)
    s.results["boot"] = times


# ---------------------------------------------------------------- output

def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r):
    if r >= 100:
        return f"{r:.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×"


def compute(systems):
    """Medians and ratios: {sys.key: {row: (median, ratio or None)}}."""
    native = systems[0]
    table = {}
    for s in systems:
        table[s.key] = {}
        for key, _, _, lower, _ in ROWS:
            vals = s.results.get(key)
            if not vals:
                continue
            med = statistics.median(vals)
            nvals = native.results.get(key)
            ratio = None
            if nvals and med > 0:
                nmed = statistics.median(nvals)
                ratio = med / nmed if lower else nmed / med
            table[s.key][key] = (med, ratio)
    return table


def cell_text(s, key, table, md):
    if s.unavailable:
        return s.unavailable
    if key in table[s.key]:
        med, ratio = table[s.key][key]
        txt = fmt(med)
        if ratio is not None and s.key != "native":
            txt += f" ({fmt_ratio(ratio)})"
        return txt
    reason = s.na.get(key) or s.error or "no figure"
    if md:
        # The table gets the gist; "Cells without a figure" has it all.
        reason = reason.split(":")[0][:60]
    return f"n/a: {reason}"


def text_table(systems, table):
    headers = ["benchmark", "unit"] + [s.label for s in systems]
    rows = []
    for key, label, unit, _, _ in ROWS:
        rows.append([label, unit] + [cell_text(s, key, table, True) for s in systems])
    rows = [[c if len(c) <= 44 else c[:43] + "…" for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def md_escape(t):
    return t.replace("|", "\\|")


def md_table(systems, table):
    headers = ["Benchmark", "Unit"] + [s.label for s in systems] + ["ruml goal"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for key, label, unit, lower, goal in ROWS:
        cells = [label, unit + ("" if lower else " (higher is better)")]
        cells += [md_escape(cell_text(s, key, table, True)) for s in systems]
        cells.append(f"≤ {goal:g}×" if goal else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(systems, table, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in systems if s.key != "native" and not s.unavailable]
    rows = [r for r in ROWS if any(r[0] in table[s.key] for s in shown)]
    fig_h = 1.0 + 0.32 * len(rows) * max(1, len(shown)) / 1.6
    fig, ax = plt.subplots(figsize=(10, max(4.5, fig_h)))
    n = max(1, len(shown))
    bar_h = 0.8 / n
    colors = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b"]
    ys = list(range(len(rows)))
    for i, s in enumerate(shown):
        vals, pos = [], []
        for y, r in zip(ys, rows):
            cell = table[s.key].get(r[0])
            if cell and cell[1]:
                vals.append(cell[1])
                pos.append(y - 0.4 + bar_h * (i + 0.5))
        ax.barh(pos, vals, height=bar_h * 0.92, color=colors[i % len(colors)], label=s.label)
        for y, r in zip(ys, rows):
            if r[0] not in table[s.key]:
                ax.text(1.02, y - 0.4 + bar_h * (i + 0.5), f"{s.label}: n/a", va="center",
                        fontsize=7, color=colors[i % len(colors)])
    for y, r in zip(ys, rows):
        if r[4]:
            ax.plot([r[4], r[4]], [y - 0.45, y + 0.45], color="black", lw=1.5, ls="--")
    ax.axvline(1.0, color="grey", lw=1)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.set_yticks(ys)
    ax.set_yticklabels([r[1] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio to native (log scale; > 1 is slower; throughputs as native ÷ system)")
    ax.set_title("ruml benchmarks: cost relative to native (dashed: ruml's goal)")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_description():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    distro = out(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""])
    virt = out(["systemd-detect-virt"]) or ("virtual machine" if "hypervisor" in open("/proc/cpuinfo").read() else "")
    load = open("/proc/loadavg").read().split()[:3]
    return {
        "load": " ".join(load),
        "cpu": cpu, "cores": os.cpu_count(), "mem": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(), "distro": distro, "virt": virt,
    }


def tool_versions():
    gcc = out(["gcc", "-dumpfullversion"])
    return {
        "busybox": dpkg_version("busybox-static"),
        "gcc": gcc,
        "hyperfine": out(["hyperfine", "--version"]),
    }


def write_markdown(path, png_rel, systems, table, args, machine, versions, elapsed, n_c):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    goals = [(label, goal) for _, label, _, _, goal in ROWS if goal]
    goal_lines = "\n".join(f"| {label} | ≤ {g:g}× |" for label, g in goals)
    sys_lines = []
    for s in systems:
        what = {
            "native": "`chroot ROOT CMD` on the host kernel.",
            "uml": "Debian's `user-mode-linux` (`linux.uml`), hostfs root: `rootfstype=hostfs "
                   "rootflags=ROOT rw mem=1G con0=fd:0,fd:1 con=null quiet init=/bench/uml-init`, "
                   "its memory file in TMPDIR=/dev/shm. The init script mounts /proc, /sys, /dev "
                   "and a tmpfs on /tmp, runs the suite and powers off.",
            "gvisor": "Debian's `runsc`: `runsc --platform=ptrace --network=none --ignore-cgroups "
                      "do -root ROOT CMD` (as root; the suite mounts a gVisor tmpfs on /tmp).",
            "proot": "Debian's `proot`: `proot -r ROOT -b /dev -b /proc CMD`.",
        }.get(s.key)
        if s.is_ruml:
            mode = s.key.split("-", 1)[1]
            what = (f"`target/release/ruml quiet mem=2G mode={mode} root=ROOT -- CMD` "
                    "(the suite asks for a tmpfs on /tmp; where that fails it writes wherever "
                    "/tmp or /dev/shm is writable — with ruml's default overlay root, /tmp "
                    "is in the overlay's in-memory upper layer).")
        status = s.unavailable or (f"failed: {s.error}" if s.error else "ran")
        ver = f" Version: {s.version}." if s.version else ""
        notes = "".join(f" Note: {n.rstrip('.')}." for n in s.notes)
        sys_lines.append(f"- **{s.label}** — {what}{ver} Status: {status}.{notes}")
    notes = []
    for s in systems:
        if s.unavailable:
            notes.append(f"- {s.label}: {s.unavailable}.")
            continue
        for key, label, *_ in ROWS:
            if key not in table[s.key]:
                notes.append(f"- {s.label}, {label}: n/a — {s.na.get(key) or s.error or 'no figure'}.")
                if key == "build" and s.buildlog:
                    notes.append("  The end of its output:\n\n" +
                                 "\n".join("      " + l for l in s.buildlog[-6:]) + "\n")
    notes_md = "\n".join(notes) if notes else "- None: every system reported every figure."
    # Hand-measured profile of the seccomp handoff (not from this run).
    try:
        with open(os.path.join(REPO, "bench", "handoff-profile.md")) as f:
            handoff_md = f.read()
    except OSError:
        handoff_md = ""
    md = f"""# Benchmarks

Generated by `bench/run` on {now} — do not edit by hand; run `bench/run` to
regenerate this page and [benchmarks.png](benchmarks.png).

**Machine:** {machine['cpu']}, {machine['cores']} cores, {machine['mem']} RAM,
{machine['distro']}, host kernel {machine['kernel']}{', ' + machine['virt'] if machine['virt'] else ''};
load average when the run started: {machine['load']}.
Tools: gcc {versions['gcc']}, busybox-static {versions['busybox']}, {versions['hyperfine']}.
Runs: microbenchmarks ×{args.runs}, real build ×{args.build_runs}, boot ×{args.boot_runs}
(after {args.boot_warmup} warm-up); the whole run took {elapsed / 60:.1f} min.

Figures from a small virtual machine vary from run to run, more so when
other work shares its two cores: the systems built on ptrace (ruml, UML,
gVisor's ptrace platform, proot) need the tracer scheduled at every trap and
feel that load most. Compare the ratios of one run rather than figures
across runs.

## Results

Each cell is the **median of the runs**, followed by its **ratio to native**
from the same run (for throughputs, native ÷ system, so a ratio above 1 is
always "slower than native"). "n/a" cells say why there is no figure.

{md_table(systems, table)}

![Ratios to native, log scale](benchmarks.png)

### Cells without a figure

{notes_md}

## Goals for ruml (ratio to native)

| Benchmark | Goal |
|---|---|
{goal_lines}

No test asserts these: they are what ruml aims at, and this page shows how
far it is from them.

{handoff_md}
## What is measured

All systems run the same static guest programs from the same root
directory, which `bench/run` builds itself in `bench/work/root`:

- `/bin`: Debian's **busybox-static** (the shell that runs the suite, `/bin/true`).
- `/bench`: the static benchmark programs, built with the host's gcc
  (`-O2 -static`): `micro` ([bench/guest/micro.c](../bench/guest/micro.c)) and
  `nop` (the program that fork+exec runs), the suite script
  ([bench/guest/suite.sh](../bench/guest/suite.sh)) and UML's init script.
- `/usr`: **the host's `/usr`, bind-mounted read-only** (gcc, make,
  binutils, libc headers and libraries) — the toolchain for the real build;
  `/lib` and `/lib64` are symlinks into it. The mounts live in a private
  mount namespace of `bench/run` (`unshare --mount`), so they vanish with it.
- `/tmp`: a tmpfs (mounted by the driver for native and proot; UML, gVisor
  and ruml are asked to mount one of their own inside).

Microbenchmarks ([bench/guest/micro.c](../bench/guest/micro.c)): each one
times its own loop inside the system with `clock_gettime(CLOCK_MONOTONIC)`;
the iteration count grows until one batch lasts at least 0.15 s, that
batch runs three times, and the figure is the cost per operation of the
fastest of the three (the one least disturbed by other load on the host).
The suite runs them all {args.runs} times in one boot of each system, and
the table shows the median of those {args.runs} figures:

- null system call: `syscall(SYS_getppid)` in a loop;
- fork + exit + wait, and fork + exec + wait of the static `/bench/nop`;
- first-touch page faults: write one byte per page of fresh anonymous
  `mmap` memory (64 MiB regions), time per page;
- pipe round trip: one byte back and forth between two processes over two pipes;
- futex round trip: two threads hand a word back and forth with
  FUTEX_WAIT/FUTEX_WAKE;
- thread create + join (`pthread_create`, `pthread_join`);
- tmpfs write and read: a 64 MiB file in 64 KiB blocks, MiB/s;
- open + close and stat of an existing file (`/bench/file`);
- TCP over 127.0.0.1 inside the system (its own network stack: ruml's,
  UML's, gVisor's netstack; natively and under proot the host's): request/
  response, one byte each way between two processes with TCP_NODELAY; and
  throughput, 64 KiB writes from one process to another that counts them
  (the count checked at the end);
- boot → `/bin/true` → exit: the whole system, timed from outside with
  hyperfine (UML's init is `/bench/boot-true`, which runs `/bin/true` and
  powers off).

The disk rows (`micro disk DIR` and the untar in the suite script) run on
**ext4 on a ubd disk** in ruml and UML — each gets a fresh 1 GiB image made
by the host's `mke2fs -t ext4` as its second disk (`ubd1=`, `/dev/ubdb`),
mounted inside — and natively on the host's own filesystem (a directory of
the bench root); gVisor and proot write there too. Once per boot:

- sequential write: a 64 MiB file in 64 KiB `write`s, then `fsync`, MiB/s;
  sequential read: the same file read back in 64 KiB blocks;
- random write: 4,096 `pwrite`s of 4 KiB at 4 KiB-aligned offsets of that
  file drawn by a fixed xorshift sequence (the same offsets everywhere),
  `fsync` after every 64 and at the end, µs per write; random read: as many
  4 KiB `pread`s, µs per read;
- small files: 1,000 files in one directory, create + write 100 bytes +
  close, then stat each, then unlink each, then `sync`; µs per file;
- untar: busybox `tar -xf` of a tarball of a source tree (Lua's sources
  {TAR_COPIES} times over, `src/lua-NN/{{src,include,doc}}`: about 1,900
  files and 130 directories, 30 MiB, made by bench.py), then `sync`, seconds.

`bench/run --only-disk` runs these rows alone (no other row, no boot, no
page written): the loop for work on the disk path. Host calls per guest
operation can be counted with `RUML_HOST_STATS=FILE` (ruml's own counters)
and `perf stat -e 'syscalls:sys_enter_*'` over ruml and its stubs; where
ruml's time goes is in [disks.md](disks.md#performance).

Real build: **Lua 5.4.7**, the copy of its sources that the `lua-src` crate
ships (crates.io, fetched with `cargo fetch` by `bench/run`; {n_c} C files:
Lua's 32 library files and a small `main.c` that links and runs it), built
from a clean tree copied into the system's `/tmp` with
`make -s -j2` and the root's gcc 12 (`-O2`) — our own Makefile,
[bench/guest/lua.mk](../bench/guest/lua.mk). The time covers make only (not
the copy), measured inside the system.

Systems:

{chr(10).join(sys_lines)}

## Running it

    bench/run            # full run (this page and the PNG), about 10–15 min
    bench/run --quick    # smoke test (< 2 min): every system runs every
                         # program and reports a figure; no timing asserted

`bench/run` needs root (chroot, mounts, runsc). It installs what is missing
with apt-get (user-mode-linux, runsc, proot, busybox-static, hyperfine,
python3-matplotlib, gcc, make, libc6-dev), fetches lua-src with cargo, builds
ruml (`cargo build --release`), then runs `bench/bench.py` in a private
mount namespace. Options: `--runs N`, `--build-runs N`, `--boot-runs N`,
`--systems native,ruml,uml,gvisor,proot`, `--ruml PATH`, `--no-install`,
`--only-disk` (the disk rows alone, no page written).
Logs of every system's run are in `bench/work/logs/`.
"""
    with open(path, "w") as f:
        f.write(md)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--build-runs", type=int)
    ap.add_argument("--boot-runs", type=int)
    ap.add_argument("--boot-warmup", type=int)
    ap.add_argument("--systems", default="")
    ap.add_argument("--ruml", default=os.path.join(REPO, "target", "release", "ruml"))
    ap.add_argument("--lua-src", required=True)
    ap.add_argument("--work", default=os.path.join(BENCH, "work"))
    ap.add_argument("--write-docs", action="store_true", help="write docs/ even in quick mode")
    ap.add_argument("--no-docs", action="store_true", help="do not write docs/ in full mode")
    ap.add_argument("--only-disk", action="store_true",
                    help="run only the disk rows (no boot, no docs/): for work on the disk path")
    args = ap.parse_args()
    quick = args.quick
    args.runs = args.runs or (1 if quick else 5)
    args.build_runs = args.build_runs or (1 if quick else 3)
    args.boot_runs = args.boot_runs or (3 if quick else 10)
    args.boot_warmup = args.boot_warmup if args.boot_warmup is not None else (0 if quick else 1)
    if os.geteuid() != 0:
        raise SystemExit("bench: must run as root (chroot, mounts, runsc)")

    t_start = time.time()
    machine = machine_description()
    os.makedirs(args.work, exist_ok=True)
    logdir = os.path.join(args.work, "logs")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)
    root, n_c = build_root(args.work, args.lua_src)
    mount_root(root)

    systems = make_systems(args, root, quick)
    per_suite_timeout = 240 if quick else 1500
    use_hyperfine = shutil.which("hyperfine") is not None
    for s in systems:
        if s.unavailable:
            log(f"==> {s.label}: {s.unavailable}")
            continue
        run_suite(s, per_suite_timeout, logdir)
        if not args.only_disk:
            run_boot(s, args.boot_runs, args.boot_warmup, logdir, use_hyperfine)

    table = compute(systems)
    elapsed = time.time() - t_start
    print()
    print(text_table(systems, table))
    print()
    print("cells: median of the runs (ratio to native; for MiB/s native ÷ system)")

    write_docs = ((not quick and not args.no_docs) or args.write_docs) and not args.only_disk
    docs = os.path.join(REPO, "docs") if write_docs else args.work
    png = os.path.join(docs, "benchmarks.png")
    mdp = os.path.join(docs, "benchmarks.md")
    chart(systems, table, png)
    write_markdown(mdp, "benchmarks.png", systems, table, args, machine,
                   tool_versions(), elapsed, n_c)
    print(f"wrote {mdp} and {png}")
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump({s.key: {"label": s.label, "results": s.results, "na": s.na,
                           "error": s.error, "unavailable": s.unavailable} for s in systems}, f, indent=1)

    # The smoke check: every installed system ran and reported every figure.
    passed = failed = 0
    problems = []
    for s in systems:
        if s.unavailable:
            continue  # reported in the table; a package missing from the distribution is no failure
        bad = []
        if s.error:
            bad.append(f"suite did not finish ({s.error})")
        for key in ROW_KEYS:
            if key in table[s.key] or (args.only_disk and not key.startswith("disk_")):
                continue
            reason = s.na.get(key, "") or "no figure"
            if s.is_ruml and key in RUML_NOT_YET and not s.error:
                print(f"not yet: {s.label}: {key}: {reason}")
                continue
            bad.append(f"{key}: {reason}")
        if bad:
            failed += 1
            problems.append(f"{s.label}: " + "; ".join(bad))
        else:
            passed += 1
    for p in problems:
        print(f"FAILED {p}")
    print(f"bench: {elapsed:.0f} s")
    print(f"bench: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
