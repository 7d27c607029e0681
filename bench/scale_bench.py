"""scripts/bench S1 and S2 (BENCH_ONLY=scale): molteniron at scale, directly and through PgBouncer.

Usage: scale_bench.py MOLTENIRON PG_BINDIR OUT_DIR

It starts its own throwaway PostgreSQL (initdb in a temporary directory, loopback TCP on a free port
with SCRAM, max_connections=100; run as the `postgres` user when we are root) and Debian's PgBouncer in
transaction mode in front of it (its clients come over a Unix socket, as on a CI host; its server
connections are TCP + SCRAM), both stopped at the end. Nothing else is touched.

S1: BENCH_S1_PROCS (500) processes at once, each BENCH_S1_CYCLES (5) cycles of `allocate OWNER 1` and
`release OWNER` over 100 nodes: calls/s, exit codes, double hand-outs (from the events: must be 0),
latency p50/p99 of every call, once directly (TCP + SCRAM) and once through PgBouncer.
S2: one `allocate` (then an untimed release) BENCH_S2_RUNS (60) times each way, alternating: the median
latency directly over TCP with SCRAM against through PgBouncer's Unix socket.

Prints one JSON object on stdout; writes it to OUT_DIR/scale.json too. Standard library only.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MI, PGBIN, OUT = sys.argv[1:4]
PROCS = int(os.environ.get("BENCH_S1_PROCS", "500"))
CYCLES = int(os.environ.get("BENCH_S1_CYCLES", "5"))
S2_RUNS = int(os.environ.get("BENCH_S2_RUNS", "60"))
NODES = 100
PASSWORD = "scale-bench-scram"
ROOT = os.geteuid() == 0


def as_owner(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if ROOT else cmd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Setup:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="molteniron-scale.")
        os.chmod(self.dir, 0o755)
        if ROOT:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.bouncer_port = free_port()
        self.bouncer = None

    def start(self):
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD)
        if ROOT:
            shutil.chown(pwfile, "postgres")
        run(as_owner([f"{PGBIN}/initdb", "-D", self.data, "-U", "molteniron", "--auth-local=trust",
                      "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync"]))
        opts = (f"-k {self.dir} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off "
                "-c max_connections=100 -c synchronous_commit=off")
        run(as_owner([f"{PGBIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"),
                      "-w", "-s", "-o", opts, "start"]))
        ini = os.path.join(self.dir, "pgbouncer.ini")
        users = os.path.join(self.dir, "userlist.txt")
        with open(users, "w") as f:
            f.write(f'"molteniron" "{PASSWORD}"\n')
        with open(ini, "w") as f:
            f.write(
                "[databases]\n"
                f"* = host=127.0.0.1 port={self.port} user=molteniron password={PASSWORD}\n"
                "[pgbouncer]\n"
                "listen_addr =\n"
                f"listen_port = {self.bouncer_port}\n"
                f"unix_socket_dir = {self.dir}\n"
                "auth_type = trust\n"
                f"auth_file = {users}\n"
                "pool_mode = transaction\n"
                "default_pool_size = 20\n"
                "max_client_conn = 2000\n"
                f"logfile = {os.path.join(self.dir, 'pgbouncer.log')}\n"
            )
        if ROOT:
            for path in (ini, users):
                shutil.chown(path, "postgres")
        self.bouncer = subprocess.Popen(as_owner(["/usr/sbin/pgbouncer", ini]),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        sock = os.path.join(self.dir, f".s.PGSQL.{self.bouncer_port}")
        deadline = time.time() + 10
        while not os.path.exists(sock):
            if time.time() > deadline:
                raise SystemExit("scale_bench: pgbouncer did not start")
            time.sleep(0.02)

    def stop(self):
        if self.bouncer is not None:
            os.killpg(self.bouncer.pid, 15)
            self.bouncer.wait()
        subprocess.run(as_owner([f"{PGBIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-s", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def direct(self, db):
        return f"postgresql://molteniron:{PASSWORD}@127.0.0.1:{self.port}/{db}"

    def pooled(self, db):
        # Through a transaction pooler: no session options (PgBouncer refuses them), see docs/scale-out.md.
        return f"postgresql:///{db}?host={self.dir}&port={self.bouncer_port}&user=molteniron&options="

    def local(self, db):
        return f"postgresql:///{db}?host={self.dir}&port={self.port}&user=molteniron"


def mi(url, *args):
    env = dict(os.environ, MOLTENIRON_CONFIG="/dev/null")
    for var in ("DATABASE_URL", "MOLTENIRON_DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"):
        env.pop(var, None)
    started = time.perf_counter()
    done = subprocess.run([MI, "--database-url", url, *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    return done.returncode, time.perf_counter() - started, done.stderr


def fresh_db(setup, name):
    run([f"{PGBIN}/psql", "-q", "-X", setup.local("postgres"), "-c", f"CREATE DATABASE {name}"])
    nodes = os.path.join(setup.dir, f"{name}.yaml")
    with open(nodes, "w") as f:
        f.write("nodes:\n")
        for i in range(NODES):
            f.write(f"  - {{name: s{i}, pool: default, driver_info: {{ipmi_address: 10.60.{i // 250}.{i % 250 + 1}, "
                    f"ipmi_username: u, ipmi_password: p}}, ports: [{{address: '02:00:00:60:{i // 256:02x}:{i % 256:02x}'}}]}}\n")
    for args in (["migrate"], ["import", nodes]):
        code, _, err = mi(setup.local(name), *args)
        if code != 0:
            raise SystemExit(f"scale_bench: {args[0]} failed: {err}")


def double_handouts(setup, db):
    """Allocate events of a node that follow another allocate of it with no release, reap or forced
    release between: a node handed to a second owner while the first held it."""
    sql = ("SELECT count(*) FROM (SELECT action, lag(action) OVER (PARTITION BY node_id ORDER BY id) AS prev "
           "FROM events WHERE node_id IS NOT NULL AND action IN ('allocate', 'release', 'reap', 'force_release')) e "
           "WHERE action = 'allocate' AND prev = 'allocate'")
    out = subprocess.run([f"{PGBIN}/psql", "-X", "-At", setup.local(db), "-c", sql], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return int(out.strip())


def s1(setup, way, url_of):
    db = f"s1_{way}"
    fresh_db(setup, db)
    url = url_of(db)
    codes, latencies, lock = {}, [], threading.Lock()
    errors = {}  # the error lines of failed calls (exit 3 aside), with how often each came
    gate = threading.Barrier(PROCS)

    def worker(i):
        gate.wait()
        for c in range(CYCLES):
            for args in (("allocate", f"job-{i}", "1", "--lease", "600"), ("release", f"job-{i}")):
                code, secs, err = mi(url, *args)
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                    latencies.append(secs)
                    if code not in (0, 3):
                        line = err.strip().splitlines()[0] if err.strip() else "(nothing on stderr)"
                        errors[line] = errors.get(line, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(PROCS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "way": way,
        "processes": PROCS,
        "cycles": CYCLES,
        "calls": len(latencies),
        "seconds": round(wall, 2),
        "calls_per_second": round(len(latencies) / wall, 1),
        "exit_codes": {str(k): v for k, v in sorted(codes.items())},
        "double_handouts": double_handouts(setup, db),
        "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5]),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


def s2(setup):
    fresh_db(setup, "s2")
    times = {"direct": [], "pooled": []}
    urls = {"direct": setup.direct("s2"), "pooled": setup.pooled("s2")}
    for i in range(S2_RUNS + 5):
        for way in ("direct", "pooled") if i % 2 == 0 else ("pooled", "direct"):
            code, secs, err = mi(urls[way], "allocate", "s2-job", "1")
            if code != 0:
                raise SystemExit(f"scale_bench: S2 {way} allocate failed: {err}")
            mi(urls[way], "release", "s2-job")
            if i >= 5:  # the first rounds warm both ways up
                times[way].append(secs)
    direct = statistics.median(times["direct"]) * 1000
    pooled = statistics.median(times["pooled"]) * 1000
    return {"runs": S2_RUNS, "direct_tcp_scram_ms": round(direct, 2), "pooled_ms": round(pooled, 2),
            "ratio": round(pooled / direct, 3)}


def main():
    setup = Setup()
    try:
        setup.start()
        result = {
            "s1": [s1(setup, "direct", setup.direct), s1(setup, "pgbouncer", setup.pooled)],
            "s2": s2(setup),
        }
    finally:
        setup.stop()
    text = json.dumps(result, indent=2)
    with open(os.path.join(OUT, "scale.json"), "w") as f:
        f.write(text + "\n")
    print(text)


main()
