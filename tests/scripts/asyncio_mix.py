"""asyncio: subprocesses, TCP and unix sockets, timers, queues.
Deterministic output, run natively and under ruml (async_io.rs)."""
import asyncio
import os
import tempfile


async def subprocesses():
    p = await asyncio.create_subprocess_exec(
        "/bin/echo", "from a child", stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate()
    print("echo:", out.decode().strip(), "status", p.returncode)
    p = await asyncio.create_subprocess_shell(
        "read x; echo got $x; exit 3",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate(b"input-line\n")
    print("shell:", out.decode().strip(), "status", p.returncode)
    procs = [await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", f"sleep 0.0{i}; echo {i}", stdout=asyncio.subprocess.PIPE)
        for i in range(5)]
    outs = await asyncio.gather(*(q.communicate() for q in procs))
    print("parallel:", sorted(o[0].decode().strip() for o in outs))


async def echo(reader, writer):
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()


async def tcp():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def client(i):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        got = []
        for k in range(3):
            w.write(f"client {i} line {k}\n".encode())
            await w.drain()
            got.append((await r.readline()).decode().strip())
        w.close()
        await w.wait_closed()
        return got

    results = await asyncio.gather(*(client(i) for i in range(8)))
    for r in results:
        print("tcp:", r)
    server.close()
    await server.wait_closed()


async def unix(path):
    server = await asyncio.start_unix_server(echo, path)
    r, w = await asyncio.open_unix_connection(path)
    w.write(b"over a unix socket\n")
    await w.drain()
    print("unix:", (await r.readline()).decode().strip())
    w.close()
    await w.wait_closed()
    server.close()
    await server.wait_closed()


async def timers():
    order = []
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    # Every deadline from one base time, so the order is the deadlines'
    # however slowly the statements run.
    t0 = loop.time()
    loop.call_at(t0 + 0.3, order.append, "call_at 300ms")
    loop.call_at(t0 + 0.1, order.append, "call_at 100ms")
    loop.call_at(t0 + 0.5, done.set_result, None)

    async def sleeper(d, name):
        await asyncio.sleep(max(0.0, t0 + d - loop.time()))
        order.append(name)

    await asyncio.gather(sleeper(0.2, "sleep 200ms"), sleeper(0.4, "sleep 400ms"), done)
    print("timers:", order)
    try:
        await asyncio.wait_for(asyncio.sleep(10), 0.02)
    except asyncio.TimeoutError:
        print("wait_for: timed out")
    q = asyncio.Queue(maxsize=2)

    async def producer():
        for i in range(6):
            await q.put(i)
        await q.put(None)

    async def consumer():
        got = []
        while (x := await q.get()) is not None:
            got.append(x)
        return got

    _, got = await asyncio.gather(producer(), consumer())
    print("queue:", got)


async def main():
    await subprocesses()
    await tcp()
    with tempfile.TemporaryDirectory() as d:
        await unix(os.path.join(d, "sock"))
    await timers()
    print("done")


asyncio.run(main())
