#!/usr/bin/env python3
"""The queue benchmarks H1 and H2 (docs/benchmarks.md, "Queue: H1 and H2"), driven by scripts/bench.

H1, hand-off latency: one node, held by a holder. A waiter is started and, once it waits (its request is
in the `requests` table, or the polling loop has failed once), the holder is released; the latency is the
waiter's exit time minus the time `release` returned. The waiter is the next holder. Three ways to wait:
`allocate --wait` with LISTEN (the defaults), `allocate --wait` polling only (`listen: false`,
`poll_interval` 200ms), and the loop users write today, `until molteniron allocate OWNER; do sleep 1;
done`. Before each release the driver pauses for a random (seeded) fraction of the way's own period (0
with LISTEN, up to poll_interval when polling, up to 1 s for the loop), so that the release falls at a
random point of the waiter's cycle, as a real one would.

H2, a busy CI day: about 300 jobs on 8 nodes, Poisson arrivals, 80 % asking for 1 node and 20 % for 3
or 4, exponential hold times scaled so that the offered load is 0.9, from one seed; run once with
`allocate --wait` and once with the polling loop, each for at most --h2-seconds. The node analysis comes
from the events table (read with psql): busy node-seconds, and how long a node sat free while requests
waited.

Standard library only. It is a measurement, not a test: verdicts go into the rows it writes, and it exits
non-zero only when it could not measure. Everything runs against the private server scripts/bench
started (PGHOST, PGPORT and PGUSER in the environment).
"""

import argparse
import bisect
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time

LOOP = 'until "$0" allocate "$1" "$2" >/dev/null 2>&1; do echo waiting; sleep 1; done'
LOOP_SLEEP = 1.0


def say(text):
    print(f"bench: {text}", file=sys.stderr, flush=True)


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(1, math.ceil(p / 100 * len(v)))
    return v[k - 1]


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


class Psql:
    """One psql process kept open: a query is written to its stdin, its rows read up to a marker line."""

    def __init__(self, psql, db):
        self.proc = subprocess.Popen(
            [psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def query(self, sql):
        self.proc.stdin.write(sql.strip().rstrip(";") + ";\n\\echo __end__\n")
        self.proc.stdin.flush()
        rows = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"psql ended while running: {sql}")
            line = line.rstrip("\n")
            if line == "__end__":
                return rows
            rows.append(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def quote(text):
    return "'" + text.replace("'", "''") + "'"


def run(cmd, env, what):
    result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what}: exit {result.returncode}: {result.stderr.strip()}")


def double_handouts(psql):
    """allocate events that follow an allocate of the same node with no release between (P3's check)."""
    return int(psql.query("""SELECT count(*) FROM (
        SELECT action, lag(action) OVER (PARTITION BY node_id ORDER BY id) AS previous
        FROM events WHERE action IN ('allocate', 'release')) AS e
        WHERE action = 'allocate' AND previous = 'allocate'""")[0])


# --- H1 ---------------------------------------------------------------------------------------------------

def h1(args, way, db, config, period, rng):
    """Hand-offs one after another on a one-node database; returns the latencies in ms."""
    env = dict(os.environ, PGDATABASE=db, MOLTENIRON_CONFIG=config)
    psql = Psql(args.psql, db)
    holder = f"h1-{way}-0"
    run([args.mi, "allocate", holder], env, "the first holder's allocate")
    latencies, from_start = [], []
    for i in range(1, args.h1_handoffs + 1):
        owner = f"h1-{way}-{i}"
        exited = []
        if way == "loop":
            waiter = subprocess.Popen(["bash", "-c", LOOP, args.mi, owner, "1"], env=env,
                                      stdout=subprocess.PIPE, text=True)
        else:
            waiter = subprocess.Popen([args.mi, "allocate", owner, "--wait", "--wait-timeout", "60s"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reaper = threading.Thread(target=lambda p=waiter: (p.wait(), exited.append(time.monotonic())))
        reaper.start()
        # Wait until it waits: the loop has failed once, or the request is in line.
        if way == "loop":
            if waiter.stdout.readline().strip() != "waiting":
                raise RuntimeError(f"H1 {way}: the loop of {owner} ended before it failed once")
        else:
            give_up = time.monotonic() + 30
            while psql.query(f"SELECT state FROM requests WHERE owner = {quote(owner)}") != ["waiting"]:
                if exited or time.monotonic() > give_up:
                    reaper.join()
                    raise RuntimeError(f"H1 {way}: {owner} did not wait in line: {waiter.stderr.read()}")
                time.sleep(0.002)
        time.sleep(rng.uniform(0, period))
        releasing = time.monotonic()
        run([args.mi, "release", holder], env, f"H1 {way}: release {holder}")
        released = time.monotonic()
        from_start.append((exited_at(reaper, exited) - releasing) * 1000)
        if not exited or waiter.returncode != 0:
            raise RuntimeError(f"H1 {way}: the waiter {owner} did not get the node (exit {waiter.returncode})")
        latencies.append((exited[0] - released) * 1000)
        holder = owner
    run([args.mi, "release", holder], env, f"H1 {way}: the last release")
    doubles = double_handouts(psql)
    granted = int(psql.query(f"SELECT count(*) FROM events WHERE action = 'allocate' AND owner LIKE 'h1-{way}-%'")[0])
    # The node's free spans as the events table has them (release event to the next allocate event, both
    # transaction start times): what H2 measures, on the same clock.
    changes = [row.split("|") for row in psql.query(
        "SELECT extract(epoch FROM at), action FROM events WHERE action IN ('allocate', 'release') ORDER BY id")]
    gaps = [(float(b[0]) - float(a[0])) * 1000 for a, b in zip(changes, changes[1:])
            if a[1] == "release" and b[1] == "allocate"]
    psql.close()
    if doubles or granted != args.h1_handoffs + 1:
        raise RuntimeError(f"H1 {way}: {granted} allocations for {args.h1_handoffs + 1} holders, {doubles} double hand-outs")
    return latencies, from_start, gaps


def exited_at(reaper, exited):
    """When the waiter exited (waiting for it, at most 2 minutes)."""
    reaper.join(120)
    return exited[0] if exited else float("inf")


# --- H2 ---------------------------------------------------------------------------------------------------

def workload(args):
    """The jobs: (arrival offset s, nodes, hold s), from the seed; holds scaled to the offered load."""
    rng = random.Random(args.h2_seed)
    rate = args.h2_jobs / args.h2_arrivals
    jobs, t = [], 0.0
    for _ in range(args.h2_jobs):
        t += rng.expovariate(rate)
        size = 1 if rng.random() < 0.8 else rng.choice((3, 4))
        jobs.append([t, size, rng.expovariate(1.0)])
    span = jobs[-1][0]
    work = sum(size * hold for _, size, hold in jobs)
    scale = args.h2_load * args.h2_nodes * span / work
    for job in jobs:
        job[2] *= scale
    return [tuple(job) for job in jobs], span


def h2_run(args, way, db, jobs):
    """Runs the day once; returns per-job records (wall-clock times) and the run's start and end."""
    env = dict(os.environ, PGDATABASE=db, MOLTENIRON_CONFIG="/dev/null")
    stop = threading.Event()
    lock = threading.Lock()
    live = {}  # job index -> the process it waits in
    records = [None] * len(jobs)

    def job(i, size, hold):
        owner = f"h2-{way}-{i}"
        arrived = time.time()
        if way == "queue":
            cmd = [args.mi, "allocate", owner, str(size), "--wait", "--wait-timeout", "10m"]
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        else:
            proc = subprocess.Popen(["bash", "-c", LOOP, args.mi, owner, str(size)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        with lock:
            live[i] = proc
        rc = proc.wait()
        returned = time.time()
        with lock:
            live.pop(i, None)
        record = {"job": i, "owner": owner, "size": size, "hold": hold, "arrived": arrived, "rc": rc,
                  "returned": returned}
        if rc == 0:
            record["granted"] = returned
            stop.wait(hold)
            subprocess.run([args.mi, "release", owner], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            record["released"] = time.time()
        records[i] = record

    start = time.time()
    deadline = start + args.h2_seconds
    threads = []
    for i, (at, size, hold) in enumerate(jobs):
        delay = start + at - time.time()
        if delay > 0:
            time.sleep(delay)
        if time.time() >= deadline:
            break
        thread = threading.Thread(target=job, args=(i, size, hold))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, deadline - time.time()))
    end = time.time()
    stop.set()
    with lock:
        waiting = list(live.items())
    for _, proc in waiting:  # still waiting at the deadline: withdraw (SIGTERM), the loop's whole group
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for thread in threads:
        thread.join(60)
    for i, (at, size, hold) in enumerate(jobs):
        if records[i] is None:  # never started, the deadline came first
            records[i] = {"job": i, "owner": f"h2-{way}-{i}", "size": size, "hold": hold,
                          "arrived": start + at, "rc": None}
    return records, start, end


def h2_analyse(args, way, psql, records, start, end):
    """Waits by size, and from the events table: utilization and the longest stretches a node sat free.

    Event times are transaction start times (now()), so a node's free span runs from its release event to
    its next allocate event (clamped at zero when the serving transaction started before the release)."""
    events = [row.split("|") for row in psql.query(
        "SELECT extract(epoch FROM at), node_id, owner, action FROM events"
        " WHERE action IN ('allocate', 'release', 'enqueue') ORDER BY id")]
    with open(os.path.join(args.out, f"h2-{way}-events.csv"), "w") as f:
        f.write("at_s,node_id,owner,action\n")
        f.write("".join(f"{float(at) - start:.6f},{node},{owner},{action}\n" for at, node, owner, action in events))
    grants, enqueued, changes = {}, {}, []
    for at, node, owner, action in events:
        at = float(at)
        if action == "enqueue":
            enqueued.setdefault(owner, at)
            continue
        changes.append((at, int(node), action))
        if action == "allocate":
            grants.setdefault(owner, at)
    # A job waits from its arrival (the driver started its allocate) until its nodes were allocated (the
    # event's time), or until the end. "db": from when the line knew it (its enqueue event) instead; a
    # job granted at once never waits there.
    waits_from = {"start": [], "db": []}
    for r in records:
        if r["arrived"] >= end:
            continue
        until = min(grants.get(r["owner"], end), end)
        waits_from["start"].append((r["arrived"], until, r["size"], r["owner"]))
        if r["owner"] in enqueued:
            waits_from["db"].append((min(enqueued[r["owner"]], until), until, r["size"], r["owner"]))
    nodes = sorted({node for _, node, _ in changes})
    free_spans = {node: [] for node in nodes}
    for k in range(args.h2_nodes - len(nodes)):
        free_spans[-1 - k] = [(start, end)]  # a node never allocated: free all along
    since = {node: start for node in nodes}
    for at, node, action in changes:
        at = min(max(at, start), end)
        if action == "allocate" and since[node] is not None:
            free_spans[node].append((since[node], max(at, since[node])))
            since[node] = None
        elif action == "release" and since[node] is None:
            since[node] = at
    for node in nodes:
        if since[node] is not None:
            free_spans[node].append((since[node], end))

    def segments(waits):
        """Piecewise-constant state: (t0, t1, free nodes, head's size or None, smallest waiting size)."""
        deltas = [(a, 1) for spans in free_spans.values() for a, b in spans if b > a]
        deltas += [(b, -1) for spans in free_spans.values() for a, b in spans if b > a]
        joins = sorted(w for w in waits if w[1] > w[0])
        points = sorted({start, end} | {t for t, _ in deltas} | {t for a, b, _, _ in joins for t in (a, b)})
        deltas.sort()
        out, free, d, j, active = [], 0, 0, 0, []
        for t0, t1 in zip(points, points[1:]):
            while d < len(deltas) and deltas[d][0] <= t0:
                free += deltas[d][1]
                d += 1
            while j < len(joins) and joins[j][0] <= t0:
                active.append(joins[j])
                j += 1
            active = [w for w in active if w[1] > t0]
            head = min(active) if active else None
            out.append((t0, t1, free, head[2] if head else None, min((w[2] for w in active), default=None),
                        head[3] if head else None))
        return out

    worst = {}

    def longest_free(segs, condition, name=None):
        starts = [s[0] for s in segs]
        best, found = 0.0, []
        for node, spans in free_spans.items():
            for a, b in spans:
                run_len, since = 0.0, None
                k = max(0, bisect.bisect_right(starts, a) - 1)
                while k < len(segs) and segs[k][0] < b:
                    t0, t1, free, head, smallest, who = segs[k]
                    if t1 > a:
                        if condition(free, head, smallest):
                            if since is None:
                                since = (max(t0, a), free, head, who)
                            run_len += min(t1, b) - max(t0, a)
                            if run_len > best:
                                best = run_len
                            found.append((run_len, node, since))
                        else:
                            run_len, since = 0.0, None
                    k += 1
        if name:  # the five longest, for whoever wants to know where they were
            found.sort(reverse=True)
            seen, top = set(), []
            for length, node, (t, free, head, who) in found:
                if (node, t) not in seen:
                    seen.add((node, t))
                    top.append({"ms": round(1000 * length, 1), "node": node, "at_s": round(t - start, 3),
                                "free": free, "head_size": head, "head": who})
                if len(top) == 5:
                    break
            worst[name] = top
        return best

    result = {}
    for name, waits in waits_from.items():
        segs = segments(waits)
        waiting_time = sum(s[1] - s[0] for s in segs if s[3] is not None)
        busy = sum((s[1] - s[0]) * (args.h2_nodes - s[2]) for s in segs if s[3] is not None)
        result[name] = {
            "utilization": busy / (args.h2_nodes * waiting_time) if waiting_time else None,
            "seconds_any_waits": waiting_time,
            "free_any_waits_ms": 1000 * longest_free(segs, lambda free, head, s: head is not None,
                                                     f"{name}: any waits"),
            "free_head_grantable_ms": 1000 * longest_free(
                segs, lambda free, head, s: head is not None and free >= head, f"{name}: head fits"),
            "free_some_grantable_ms": 1000 * longest_free(segs, lambda free, head, s: s is not None and free >= s),
        }
    by_size = {}
    for label, sizes in (("1", (1,)), ("3-4", (3, 4))):
        mine = [r for r in records if r["size"] in sizes]
        done = [r["granted"] - r["arrived"] for r in mine if "granted" in r]
        left = [end - r["arrived"] for r in mine if "granted" not in r and r["arrived"] < end]
        allw = done + left
        by_size[label] = {
            "jobs": len(mine), "granted": len(done), "still_waiting": len(left),
            "never_started": sum(1 for r in mine if r["arrived"] >= end),
            "median": median(allw) if allw else None, "p95": percentile(allw, 95) if allw else None,
            "max": max(allw) if allw else None,
        }
    failed = sum(1 for r in records if r["rc"] not in (0, None) and r["returned"] < end)
    return {"waits": by_size, "nodes": result, "seconds": end - start, "failed": failed, "longest": worst}


# --- the plot ---------------------------------------------------------------------------------------------

def svg_plot(path, runs, seconds, title, summaries):
    """Waits against arrival time, one panel per way of waiting, 1-node and 3-4-node jobs apart."""
    width, height, top, bottom, left, gap = 960, 420, 60, 60, 70, 50
    panel = (width - left - 20 - gap) / 2
    inner = height - top - bottom
    ymax = max((r.get("granted", r["end"]) - r["arrived"]) for recs in runs.values() for r in recs)
    step = next(s for s in (1, 2, 5, 10, 15, 20, 30, 60, 120, 300) if ymax / s <= 8)
    ymax = step * math.ceil(ymax / step) if ymax > 0 else step
    xstep = next(s for s in (10, 15, 20, 30, 60) if seconds / s <= 9)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for k, (name, recs) in enumerate(runs.items()):
        x0 = left + k * (panel + gap)

        def px(t):
            return x0 + t / seconds * panel

        def py(w):
            return top + inner - w / ymax * inner

        out.append(f'<text x="{x0 + panel / 2}" y="{top - 10}" text-anchor="middle" font-size="13" '
                   f'font-weight="bold">{name}</text>')
        for i in range(int(ymax / step) + 1):
            y = py(i * step)
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{i * step}</text>')
        for i in range(int(seconds / xstep) + 1):
            x = px(i * xstep)
            out.append(f'<line x1="{x:.1f}" y1="{top + inner}" x2="{x:.1f}" y2="{top + inner + 4}" stroke="#333"/>')
            out.append(f'<text x="{x:.1f}" y="{top + inner + 17}" text-anchor="middle">{i * xstep}</text>')
        out.append(f'<rect x="{x0}" y="{top}" width="{panel:.1f}" height="{inner}" fill="none" stroke="#333"/>')
        for n, line in enumerate(summaries.get(name, [])):
            out.append(f'<text x="{x0 + panel - 8}" y="{top + 16 + 15 * n}" text-anchor="end">{line}</text>')
        out.append(f'<text x="{x0 + panel / 2}" y="{height - 22}" text-anchor="middle">arrival (s into the run)</text>')
        for r in sorted(recs, key=lambda r: -r["size"]):  # the many 1-node dots over the squares
            t = r["arrived"] - r["start"]
            if r["arrived"] >= r["end"]:
                continue
            waited = r.get("granted", r["end"]) - r["arrived"]
            x, y = px(t), py(waited)
            open_ = "granted" not in r
            if r["size"] == 1:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{"none" if open_ else "#3b6fb6"}" '
                           f'stroke="#3b6fb6" fill-opacity="0.6"/>')
            else:
                out.append(f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" '
                           f'fill="{"none" if open_ else "#e07b1f"}" stroke="#b85c0a"/>')
    out.append(f'<text transform="translate(18 {top + inner / 2}) rotate(-90)" text-anchor="middle">'
               f'wait (s)</text>')
    lx = left + 10
    out.append(f'<circle cx="{lx}" cy="{top + 12}" r="3" fill="#3b6fb6"/>'
               f'<text x="{lx + 8}" y="{top + 16}">1 node</text>'
               f'<rect x="{lx - 3.5}" y="{top + 24.5}" width="7" height="7" fill="#e07b1f" stroke="#b85c0a"/>'
               f'<text x="{lx + 8}" y="{top + 32}">3-4 nodes</text>'
               f'<rect x="{lx - 3.5}" y="{top + 40.5}" width="7" height="7" fill="none" stroke="#b85c0a"/>'
               f'<text x="{lx + 8}" y="{top + 48}">open: still waiting at the end (wait so far)</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# --- main -------------------------------------------------------------------------------------------------

def server_cpu():
    """CPU seconds the private server has used so far: the postmaster, its exited children (backends)
    and its live ones, from /proc (the server's directory is PGHOST, its data directory PGHOST/data)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open(os.path.join(os.environ["PGHOST"], "data", "postmaster.pid")) as f:
            pid = int(f.readline())
    except (KeyError, OSError, ValueError):
        return None

    def stat(p):
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), [int(x) for x in fields[11:15]]  # ppid; utime, stime, cutime, cstime

    total = sum(stat(pid)[1])
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pid:
            try:
                ppid, t = stat(entry)
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                total += t[0] + t[1]
    return total / tick


def client_cpu():
    """CPU seconds of this script's finished children (molteniron, bash and their own children)."""
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_times():
    """(busy, total) jiffies of the whole machine, from /proc/stat: how loaded the cores were."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def fmt_ms(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def fmt_s(v):
    return "-" if v is None else f"{v:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mi", required=True)
    ap.add_argument("--psql", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--h1-dbs", required=True, help="listen,poll,loop databases (one node each)")
    ap.add_argument("--h2-dbs", required=True, help="queue,loop databases (--h2-nodes nodes each)")
    ap.add_argument("--h1-handoffs", type=int, default=200)
    ap.add_argument("--poll-interval", type=float, default=0.2, help="seconds, for the poll-only waiters")
    ap.add_argument("--h1-seed", type=int, default=1)
    ap.add_argument("--h2-jobs", type=int, default=300)
    ap.add_argument("--h2-nodes", type=int, default=8)
    ap.add_argument("--h2-arrivals", type=float, default=65.0, help="expected span of the arrivals, s")
    ap.add_argument("--h2-load", type=float, default=0.9)
    ap.add_argument("--h2-seconds", type=float, default=90.0, help="each H2 run stops after this long")
    ap.add_argument("--h2-seed", type=int, default=1)
    args = ap.parse_args()
    out = args.out
    poll_ms = round(args.poll_interval * 1000)
    poll_config = os.path.join(out, "queue-poll-only.yaml")
    with open(poll_config, "w") as f:
        f.write(f"listen: false\npoll_interval: {poll_ms}ms\n")

    report = {"h1": {}, "h2": {}}
    h1_dbs = dict(zip(("listen", "poll", "loop"), args.h1_dbs.split(",")))
    ways = {"listen": ("/dev/null", 0.0), "poll": (poll_config, args.poll_interval), "loop": ("/dev/null", LOOP_SLEEP)}
    rng = random.Random(args.h1_seed)
    for way, (config, period) in ways.items():
        say(f"H1 {args.h1_handoffs} hand-offs: {way}")
        lat, from_start, gaps = h1(args, way, h1_dbs[way], config, period, rng)
        with open(os.path.join(out, f"h1-{way}.csv"), "w") as f:
            f.write("after_release_returned_ms,after_release_started_ms\n")
            f.write("".join(f"{a:.3f},{b:.3f}\n" for a, b in zip(lat, from_start)))
        report["h1"][way] = {"n": len(lat), "p50": median(lat), "p95": percentile(lat, 95),
                             "p99": percentile(lat, 99), "max": max(lat), "min": min(lat),
                             "from_release_start": {"p50": median(from_start), "p99": percentile(from_start, 99)},
                             "event_gap": {"p50": median(gaps), "p99": percentile(gaps, 99), "max": max(gaps)}}

    jobs, span = workload(args)
    offered = sum(size * hold for _, size, hold in jobs) / (args.h2_nodes * span)
    report["h2"]["workload"] = {
        "jobs": len(jobs), "span_s": span, "offered_load": offered, "seed": args.h2_seed,
        "mean_hold_s": sum(h for _, _, h in jobs) / len(jobs),
        "sizes": {str(s): sum(1 for _, size, _ in jobs if size == s) for s in (1, 3, 4)}}
    with open(os.path.join(out, "h2-workload.csv"), "w") as f:
        f.write("job,arrival_s,nodes,hold_s\n")
        f.write("".join(f"{i},{a:.3f},{s},{h:.3f}\n" for i, (a, s, h) in enumerate(jobs)))
    h2_dbs = dict(zip(("queue", "loop"), args.h2_dbs.split(",")))
    runs = {}
    for way in ("queue", "loop"):
        say(f"H2 {len(jobs)} jobs on {args.h2_nodes} nodes, offered load {offered:.2f}, "
            f"arrivals over {span:.0f} s: {way} (at most {args.h2_seconds:.0f} s)")
        before, server0, client0 = cpu_times(), server_cpu(), client_cpu()
        records, start, end = h2_run(args, way, h2_dbs[way], jobs)
        after, server1, client1 = cpu_times(), server_cpu(), client_cpu()
        cpu = (after[0] - before[0]) / max(1, after[1] - before[1])
        psql = Psql(args.psql, h2_dbs[way])
        result = h2_analyse(args, way, psql, records, start, end)
        result["cpu_busy"] = cpu
        result["cpu_s"] = {"clients": client1 - client0,
                           "server": server1 - server0 if server0 is not None and server1 is not None else None}
        result["double_handouts"] = double_handouts(psql)
        psql.close()
        report["h2"][way] = result
        for r in records:
            r["start"], r["end"] = start, end
        runs[way] = records
        with open(os.path.join(out, f"h2-{way}.json"), "w") as f:
            json.dump(records, f, indent=1)
        say(f"H2 {way}: {json.dumps({k: v for k, v in result.items() if k != 'longest'})}")
    labels = {"queue": "allocate --wait (the queue)", "loop": "until allocate; do sleep 1; done"}
    summaries = {labels[way]: [f"{size} node{'' if size == '1' else 's'}: median {fmt_s(w['median'])} s, p95 {fmt_s(w['p95'])} s, "
                               f"max {fmt_s(w['max'])} s" for size, w in report["h2"][way]["waits"].items()]
                 for way in runs}
    svg_plot(os.path.join(out, "queue-waits.svg"), {labels[k]: v for k, v in runs.items()},
             args.h2_seconds, f"H2: waits by request size, {len(jobs)} jobs on {args.h2_nodes} nodes, "
             f"offered load {offered:.2f} (seed {args.h2_seed})", summaries)
    with open(os.path.join(out, "queue.json"), "w") as f:
        json.dump(report, f, indent=1)

    # The rows: target, ours, baseline, ratio, goal, verdict ("-": no goal, not counted).
    rows = []
    h = report["h1"]
    loop = h["loop"]
    loop_cell = f"loop {fmt_ms(loop['p50'])}/{fmt_ms(loop['p95'])}/{fmt_ms(loop['p99'])} ms"
    for way, label, limit in (("listen", "H1 hand-off, LISTEN, p50/p95/p99", 50.0),
                              ("poll", f"H1 hand-off, poll {poll_ms}ms, p50/p95/p99", poll_ms + 100.0)):
        v = h[way]
        rows.append((label, f"{fmt_ms(v['p50'])}/{fmt_ms(v['p95'])}/{fmt_ms(v['p99'])} ms", loop_cell,
                     f"{max(0.0, v['p50'] / loop['p50']):.2f}", f"p99 <= {limit:.0f} ms",
                     "PASS" if v["p99"] <= limit else "FAIL"))
    q, lp = report["h2"]["queue"], report["h2"]["loop"]
    qu, lu = q["nodes"]["start"]["utilization"], lp["nodes"]["start"]["utilization"]
    rows.append(("H2 utilization while requests wait", f"{100 * qu:.1f}%", f"loop {100 * lu:.1f}%",
                 f"{qu / lu:.2f}", "-", "-"))
    for size in ("1", "3-4"):
        a, b = q["waits"][size], lp["waits"][size]

        def cell(w):
            mark = ">=" if w["still_waiting"] or w["never_started"] else ""
            return f"{fmt_s(w['median'])}/{fmt_s(w['p95'])}/{mark}{fmt_s(w['max'])} s"

        goal, verdict = "-", "-"
        if size == "3-4":
            goal = "max < loop's"
            bounded = a["still_waiting"] == 0 and a["never_started"] == 0 and a["granted"] == a["jobs"]
            verdict = "PASS" if bounded and a["max"] < b["max"] else "FAIL"
        ratio = f"{a['median'] / b['median']:.2f}" if b["median"] else "-"
        rows.append((f"H2 wait, {size} node(s), p50/p95/max", cell(a), "loop " + cell(b), ratio, goal, verdict))
    qf, lf = q["nodes"]["start"], lp["nodes"]["start"]
    rows.append(("H2 node free while any request waits", f"{fmt_ms(qf['free_any_waits_ms'])} ms",
                 f"loop {fmt_ms(lf['free_any_waits_ms'])} ms", "-", "-", "-"))
    # The head of the queue's line is the first request the line knew of (its enqueue event), as the line
    # orders them: under load a job's process can take hundreds of ms from start to enqueue, so the
    # driver's arrival order is not the line's. The loop has no line: its head is the earliest arrival.
    limit = h["listen"]["p99"]
    head = q["nodes"]["db"]["free_head_grantable_ms"]
    rows.append(("H2 node free while the head fits, max", f"{fmt_ms(head)} ms",
                 f"loop {fmt_ms(lf['free_head_grantable_ms'])} ms",
                 f"{head / lf['free_head_grantable_ms']:.2f}" if lf['free_head_grantable_ms'] else "-",
                 f"<= H1 p99 {fmt_ms(limit)} ms", "PASS" if head <= limit else "FAIL"))
    with open(os.path.join(out, "queue-rows.tsv"), "w") as f:
        f.write("".join("\t".join(row) + "\n" for row in rows))
    w = report["h2"]["workload"]
    notes = [
        f"H1: {args.h1_handoffs} hand-offs per way; poll-only with poll_interval {poll_ms}ms (+-25 % jitter); "
        f"min/max ms: LISTEN {fmt_ms(h['listen']['min'])}/{fmt_ms(h['listen']['max'])}, "
        f"poll {fmt_ms(h['poll']['min'])}/{fmt_ms(h['poll']['max'])}, loop {fmt_ms(loop['min'])}/{fmt_ms(loop['max'])}",
        "H1 from release started to the waiter's exit, p50/p99 ms: " + ", ".join(
            f"{way} {fmt_ms(h[way]['from_release_start']['p50'])}/{fmt_ms(h[way]['from_release_start']['p99'])}"
            for way in ways),
        "H1 node free per the events (release to allocate event), p50/p99/max ms: " + ", ".join(
            f"{way} {fmt_ms(h[way]['event_gap']['p50'])}/{fmt_ms(h[way]['event_gap']['p99'])}/"
            f"{fmt_ms(h[way]['event_gap']['max'])}" for way in ways),
        f"H2: {w['jobs']} jobs (1 node: {w['sizes']['1']}, 3: {w['sizes']['3']}, 4: {w['sizes']['4']}), seed {w['seed']}, "
        f"arrivals over {w['span_s']:.1f} s, mean hold {w['mean_hold_s']:.2f} s, offered load {w['offered_load']:.2f}; "
        f"runs of {q['seconds']:.1f} s (queue) and {lp['seconds']:.1f} s (loop)",
    ]
    for way, r in (("queue", q), ("loop", lp)):
        ws = r["waits"]
        notes.append(
            f"H2 {way}: still waiting at the end: {ws['1']['still_waiting']} 1-node, {ws['3-4']['still_waiting']} 3-4-node; "
            f"never started: {ws['1']['never_started'] + ws['3-4']['never_started']}; failed: {r['failed']}; "
            f"double hand-outs: {r['double_handouts']}; longest free ms while some waiting request fits: "
            f"{fmt_ms(r['nodes']['start']['free_some_grantable_ms'])}; machine CPU busy {100 * r['cpu_busy']:.0f}%, "
            f"CPU seconds: molteniron and bash {r['cpu_s']['clients']:.1f}, PostgreSQL "
            f"{'-' if r['cpu_s']['server'] is None else format(r['cpu_s']['server'], '.1f')}")
    if q["nodes"]["db"]["seconds_any_waits"]:
        d = q["nodes"]["db"]
        s = q["nodes"]["start"]
        notes.append(f"H2 queue, a job waiting from its enqueue event (the line's view; the head row uses it): "
                     f"utilization {100 * d['utilization']:.1f}%, node free while any waits "
                     f"{fmt_ms(d['free_any_waits_ms'])} ms, while the head fits {fmt_ms(d['free_head_grantable_ms'])} ms; "
                     f"from the driver's start of its allocate instead (arrival order): while the head fits "
                     f"{fmt_ms(s['free_head_grantable_ms'])} ms")
    with open(os.path.join(out, "queue-notes.txt"), "w") as f:
        f.write("".join(f"bench: not a target: {n}\n" for n in notes))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        say(f"queue: {e}")
        sys.exit(1)
