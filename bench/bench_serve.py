"""HTTP decisions per second of the ad server, beside a bare endpoint of the same HTTP stack.

Builds a temporary data directory: 100,000 people (device ``d<i>`` is person ``p<i>``, an
age 18-70 and a home county among 16; 1% opted out of personalized ads) and the 1,000
campaigns of ``bench_decide.py`` (same generator and seed; flights moved to cover now, large
budgets). The campaigns that target audiences keep them: each advertiser's ``aud<k>`` is
saved as the expression audience ``age in <18+2k>..<33+2k>``. No world is generated, so no
one is in a scene now and the scene-targeted campaigns (30%) are passed over: the server as
it runs with tags but without the live scene engine.

Two ``uvicorn`` processes (three with ``--redis``), one worker each, ``--log-level warning
--no-access-log``, are started, pinned to one core while the load generator is pinned to the
other (``taskset``), and measured one after the other, never at once (the others idle
meanwhile), in ``--rounds`` interleaved rounds so that a slow spell of a shared machine falls
on all alike:

* **bare**: a FastAPI app defined here with one ``POST /v1/decide`` that parses the same
  body with the same pydantic model (:class:`allscene.delivery.http.DecideIn`) and returns a
  small JSON with orjson: the cost of the HTTP stack alone, the baseline;
* **ad server**: ``allscene.api.app:create_app`` on the data directory (in-process state);
* **ad server + Redis** (with ``--redis URL``): the same on its own copy of the data, with
  its online state in Redis under a prefix of its own, deleted afterwards.

The load generator is asyncio over raw sockets: ``--connections`` keep-alive connections,
each sending pre-encoded HTTP/1.1 requests one at a time (random device and placement,
weather in half; 50,000 distinct requests, so frequency caps rarely bind) and reading each
response by its Content-Length. Each round: a warm-up, then ``--seconds`` measured; any
non-2xx answer stops the benchmark. Printed: requests/s (and per round), requests per
second of server CPU (steadier when something else shares the machine), client latency
p50/p99, the server's and the client's CPU, ads vs no ad, and the ad server over bare (goal:
>= 50%). Near 100% client CPU means the client, not the server, is the limit.

Run: ``python bench/bench_serve.py [--rounds 4] [--seconds 2.5] [--connections 32]
[--redis redis://127.0.0.1:6379/0]`` (about 70 s with ``--redis``)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

from allscene.delivery.http import DecideIn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEOPLE = 100_000
SECRET = "bench-serve-secret"


# --- the bare endpoint (run by uvicorn as bench_serve:bare_app) ------------------------------

def bare_app():
    """FastAPI with one ``POST /v1/decide``: the body parsed as the ad server parses it, a
    small JSON back through orjson, nothing else."""
    app = FastAPI(title="bare")

    @app.post("/v1/decide")
    async def post_decide(body: DecideIn) -> Response:
        out = {"request_id": "bare", "placement": body.placement, "outcome": "no_ad",
               "ad": None, "reasons": {}}
        return Response(orjson.dumps(out), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- the data directory ----------------------------------------------------------------------

def make_data(data: Path, n_campaigns: int, seed: int) -> dict[str, int]:
    """People, audiences and campaigns in ``data``; returns what was made."""
    import pyarrow as pa

    sys.path.insert(0, str(HERE))
    from bench_decide import COUNTIES, build

    from allscene.audiences.index import TagIndex
    from allscene.audiences.service import Audiences
    from allscene.audiences.store import AudienceStore
    from allscene.config import Settings
    from allscene.delivery.campaigns import CampaignService
    from allscene.media.placements import load_placements
    from allscene.storage.configdb import ConfigStore
    from allscene.storage.tables import TableStore

    rng = random.Random(seed)
    ids = [f"p{i}" for i in range(PEOPLE)]
    tables = TableStore(data / "derived")
    tables.write("identity_devices", pa.table({"device_id": [f"d{i}" for i in range(PEOPLE)],
                                               "person_id": ids}))
    tags = pa.table({"person_id": ids, "age": [rng.randrange(18, 71) for _ in ids],
                     "home_county": [rng.choice(COUNTIES) for _ in ids]})
    tables.write("tag_table", tags)
    out = ids[::100]
    consent = pa.table({"person_id": out, "personalized_ads": [False] * len(out)})
    tables.write("consent", consent)

    pairs = build(n_campaigns, load_placements(), random.Random(7))  # bench_decide's
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    flight = {"start": (now - dt.timedelta(days=1)).isoformat(),
              "end": (now + dt.timedelta(days=30)).isoformat()}
    audiences = AudienceStore(data / "audiences")
    index = TagIndex.build(tags)
    wanted: dict[str, set[str]] = {}
    for adv, c in pairs:
        wanted.setdefault(adv, set()).update(c.targeting.audiences)
    saved = 0
    for adv, names in sorted(wanted.items()):
        if not names:
            continue
        aud = Audiences(tags, consent, audiences, advertiser=adv, index=index)
        for name in sorted(names):
            k = int(name.removeprefix("aud"))
            aud.create(name, f"age in {18 + 2 * k}..{33 + 2 * k}")
            saved += 1
    store = ConfigStore(Settings(data_dir=data).config_db)
    service = CampaignService(store)
    for adv in sorted(wanted):
        store.add_advertiser(adv, adv.title())
    for adv, c in pairs:
        doc = c.model_dump(mode="json")
        doc["flights"] = [flight]
        doc["budget"] = {"total": 1e8, "daily": 1e7}
        service.create(adv, doc)
    return {"people": PEOPLE, "opted out": len(out), "campaigns": len(pairs),
            "audiences": saved}


def request_bodies(n: int, seed: int) -> list[bytes]:
    """``n`` pre-encoded HTTP/1.1 requests: random devices and placements, weather in half."""
    from allscene.media.placements import load_placements

    rng = random.Random(seed)
    placements = [p.id for p in load_placements()]
    out = []
    for _ in range(n):
        body = {"placement": rng.choice(placements), "device_id": f"d{rng.randrange(PEOPLE)}"}
        if rng.random() < 0.5:
            body["weather"] = {"temp_c": round(rng.uniform(-5, 30), 1)}
        b = orjson.dumps(body)
        out.append(b"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(b), b))
    return out


# --- servers ---------------------------------------------------------------------------------

def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A uvicorn subprocess, pinned to ``core`` when ``taskset`` exists."""

    def __init__(self, app: list[str], env: dict[str, str], core: int | None, log: Path):
        self.port, self.log = _port(), log
        pin = ["taskset", "-c", str(core)] if core is not None else []
        with open(log, "wb") as err:  # a file, not a pipe: a chatty server never blocks
            self.proc = subprocess.Popen(
                pin + [sys.executable, "-m", "uvicorn", *app, "--host", "127.0.0.1",
                       "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)

    def wait_ready(self, timeout: float = 180) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise SystemExit("server exited at start:\n"
                                 + self.log.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                            timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"server did not answer /healthz in {timeout:.0f} s")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.log.read_text(errors="replace")


# --- load ------------------------------------------------------------------------------------

class Load:
    """Shared by the connections: what to send next and what came back."""

    def __init__(self, requests: list[bytes], start: int):
        self.requests, self.i = requests, start
        self.measuring = self.stopped = False
        self.ok = self.ads = 0
        self.lat: list[float] = []
        self.error: str | None = None
        self.done = asyncio.Event()

    def next_request(self) -> bytes:
        self.i = (self.i + 1) % len(self.requests)
        return self.requests[self.i]

    def fail(self, why: str) -> None:
        if self.error is None:
            self.error = why
        self.stopped = True
        self.done.set()


class Conn(asyncio.Protocol):
    """One keep-alive connection: a request, its whole response, the next request."""

    def __init__(self, load: Load):
        self.load, self.buf, self.t0 = load, bytearray(), 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send()

    def send(self) -> None:
        self.t0 = time.perf_counter()
        self.transport.write(self.load.next_request())

    def connection_lost(self, exc) -> None:
        if not self.load.stopped:
            self.load.fail(f"connection lost: {exc!r}")

    def data_received(self, data: bytes) -> None:
        buf, load = self.buf, self.load
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            at = buf.find(b"content-length:", 0, end)
            if at < 0:
                at = buf.lower().find(b"content-length:", 0, end)
                if at < 0:
                    load.fail("a response without Content-Length: "
                              + bytes(buf[:end]).decode(errors="replace"))
                    return
            n = int(buf[at + 15:buf.index(b"\r\n", at)])
            size = end + 4 + n
            if len(buf) < size:
                return
            status = int(buf[9:12])
            body = bytes(buf[end + 4:size])
            del buf[:size]
            if not 200 <= status < 300:
                load.fail(f"HTTP {status}: {body[:500].decode(errors='replace')}")
                return
            if load.measuring:
                load.lat.append(time.perf_counter() - self.t0)
                load.ok += 1
                load.ads += b'"outcome":"ad"' in body
            if load.stopped:
                return
            self.send()


async def _drive(port: int, requests: list[bytes], start: int, conns: int, warm_s: float,
                 seconds: float, server: Server) -> dict:
    loop = asyncio.get_running_loop()
    load = Load(requests, start)
    transports = []
    for _ in range(conns):
        tr, _ = await loop.create_connection(lambda: Conn(load), "127.0.0.1", port)
        tr.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transports.append(tr)
    try:
        await asyncio.wait_for(load.done.wait(), warm_s)
    except TimeoutError:
        pass
    wall0, cpu0, srv0 = time.perf_counter(), time.process_time(), server.cpu_s()
    load.measuring = True
    try:
        await asyncio.wait_for(load.done.wait(), seconds)
    except TimeoutError:
        pass
    load.measuring, load.stopped = False, True
    wall = time.perf_counter() - wall0
    cpu, srv = time.process_time() - cpu0, server.cpu_s() - srv0
    for tr in transports:
        tr.close()
    if load.error:
        raise SystemExit(f"load stopped: {load.error}")
    return {"end": load.i, "n": load.ok, "ads": load.ads, "lat": load.lat, "wall": wall,
            "client_cpu_s": cpu, "server_cpu_s": srv}

def measure(server: Server, requests: list[bytes], start: int, warm_s: float, args,
            client_core: int | None) -> dict:
    before = os.sched_getaffinity(0) if client_core is not None else None
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    try:
        try:
            import uvloop
            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(_drive(server.port, requests, start, args.connections, warm_s,
                                     args.seconds, server))
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)


# --- main ------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.5,
                    help="measured per endpoint and round")
    ap.add_argument("--rounds", type=int, default=4,
                    help="rounds over the endpoints, one after the other (interleaved, so "
                         "a slow spell of the machine falls on all of them alike)")
    ap.add_argument("--warmup", type=float, default=2.0, help="before the first round")
    ap.add_argument("--rewarm", type=float, default=1.0,
                    help="before the later rounds (the previous server's log flush ends)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--campaigns", type=int, default=1000)
    ap.add_argument("--bodies", type=int, default=50_000,
                    help="distinct pre-built requests (many, so caps rarely bind)")
    ap.add_argument("--redis", metavar="URL", help="also measure with online state in Redis")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()

    from rich.console import Console

    console = Console()
    cores = sorted(os.sched_getaffinity(0))
    pinned = shutil.which("taskset") is not None and len(cores) >= 2
    server_core, client_core = (cores[0], cores[1]) if pinned else (None, None)
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("ALLSCENE_CONFIG_URL", "ALLSCENE_REDIS_URL", "ALLSCENE_REDIS_PREFIX")}
    base_env |= {"ALLSCENE_TRACKING_SECRET": SECRET, "ALLSCENE_PUBLIC_URL": "https://ads.example"}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        template = Path(tmp) / "template"
        with console.status("people, audiences, campaigns"):
            made = make_data(template, args.campaigns, args.seed)
            requests = request_bodies(args.bodies, args.seed)
        runs = [("bare", ["bench_serve:bare_app", "--factory", "--app-dir", str(HERE)], {}),
                ("ad server", ["allscene.api.app:create_app", "--factory"], {})]
        prefix = f"bench:{uuid.uuid4().hex[:10]}:"
        if args.redis:
            runs.append(("ad server + Redis", ["allscene.api.app:create_app", "--factory"],
                         {"ALLSCENE_REDIS_URL": args.redis, "ALLSCENE_REDIS_PREFIX": prefix}))
        servers: list[tuple[str, Server, float]] = []
        rounds: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
        try:
            for i, (name, app, env) in enumerate(runs):
                data = Path(tmp) / f"data{i}"  # each server starts from the same clean data
                shutil.copytree(template, data)
                server = Server(app, base_env | env | {"ALLSCENE_DATA": str(data)}, server_core,
                                Path(tmp) / f"server{i}.log")
                servers.append((name, server, 0.0))
                with console.status(f"{name}: starting"):
                    servers[-1] = (name, server, server.wait_ready())
            for k in range(args.rounds):  # the others idle while one is measured
                warm = args.warmup if k == 0 else args.rewarm
                for name, server, _ in servers:
                    at = rounds[name][-1]["end"] if rounds[name] else 0  # go on: no repeats
                    with console.status(f"round {k + 1}/{args.rounds}, {name}: "
                                        f"{warm:g} s warm-up, {args.seconds:g} s"):
                        rounds[name].append(measure(server, requests, at, warm, args,
                                                    client_core))
        finally:
            for name, server, _ in servers:
                err = server.stop()
                if err.strip():
                    console.print(f"[yellow]{name} stderr:[/yellow] {err[-2000:]}")
            if args.redis:
                from allscene.storage.online import RedisState
                RedisState(args.redis, prefix=prefix).clear()
        results = [(name, combine(rounds[name]), started) for name, _, started in servers]

    report(console, results, made, args, server_core, client_core)


def combine(rounds: list[dict]) -> dict:
    """One endpoint's rounds as one figure, and the spread of requests/s between rounds."""
    wall = sum(r["wall"] for r in rounds)
    n = sum(r["n"] for r in rounds)
    lat = sorted(x for r in rounds for x in r["lat"])
    per = [r["n"] / r["wall"] for r in rounds]
    return {"rps": n / wall, "n": n, "ads": sum(r["ads"] for r in rounds),
            "p50": lat[len(lat) // 2] * 1000, "p99": lat[int(len(lat) * 0.99)] * 1000,
            "client_cpu": sum(r["client_cpu_s"] for r in rounds) / wall,
            "server_cpu": sum(r["server_cpu_s"] for r in rounds) / wall,
            "rounds": per}


def report(console, results, made, args, server_core, client_core) -> None:
    from rich.table import Table

    rs = [r for _, r, _ in results]
    bare = rs[0]
    for r in rs:
        r["per_cpu"] = r["rps"] / r["server_cpu"] if r["server_cpu"] else float("nan")
    tab = Table(title=f"POST /v1/decide over HTTP: {made['campaigns']:,} campaigns, "
                      f"{made['people']:,} people, {args.connections} connections, "
                      f"{args.rounds} x {args.seconds:g} s measured each")
    tab.add_column("measure")
    for name, _, _ in results:
        tab.add_column(name, justify="right")
    tab.add_column("goal", justify="right")

    def row(label: str, f, goal: str = "", bare_too: bool = True) -> None:
        tab.add_row(label, *[f(r) if bare_too or i else "" for i, r in enumerate(rs)], goal)

    row("requests/s", lambda r: f"{r['rps']:,.0f}")
    row("  vs bare", lambda r: f"{r['rps'] / bare['rps']:.0%}", "≥ 50%", bare_too=False)
    row("  slowest-fastest round", lambda r: f"{min(r['rounds']):,.0f}-{max(r['rounds']):,.0f}")
    row("requests per server CPU-s", lambda r: f"{r['per_cpu']:,.0f}")
    row("  vs bare", lambda r: f"{r['per_cpu'] / bare['per_cpu']:.0%}", bare_too=False)
    row("latency p50", lambda r: f"{r['p50']:.1f} ms")
    row("latency p99", lambda r: f"{r['p99']:.1f} ms")
    row("server CPU (of 1 core)", lambda r: f"{r['server_cpu']:.0%}")
    row("client CPU (of 1 core)", lambda r: f"{r['client_cpu']:.0%}")
    row("ads / no ad", lambda r: f"{r['ads']:,} / {r['n'] - r['ads']:,}", bare_too=False)
    tab.add_row("server start", *[f"{s:.1f} s" for _, _, s in results], "")
    console.print(tab)
    console.print(f"data: {made['audiences']:,} saved audiences, {made['opted out']:,} people "
                  "opted out; " + (f"servers on core {server_core}, load generator on core "
                                   f"{client_core}" if server_core is not None
                                   else "not pinned (no taskset, or 1 core)")
                  + ("; Redis itself is not pinned" if args.redis else ""))
    busy = [name for name, r, _ in results if r["client_cpu"] > 0.9]
    if busy:
        console.print(f"[red]the load generator was near 100% CPU for: {', '.join(busy)}; "
                      "those figures are the client's limit, not the server's[/red]")
    short = [name for name, r, _ in results if r["server_cpu"] < 0.9]
    if short:
        console.print(f"[yellow]server CPU below 90% for: {', '.join(short)}: it waited (on "
                      "Redis, or for its core while something else ran there)[/yellow]")

if __name__ == "__main__":
    main()
