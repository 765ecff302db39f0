#!/usr/bin/env python3
"""Helpers for run.sh (standard library only).

  ha1 USERS_CSV DIR          db_text tables for Kamailio's htable: HA1 per user
  probe IP PORT SECONDS      wait until a SIP server answers OPTIONS (exit 1 if not)
  sample OUT ROOT_PID        CPU of ROOT_PID and its descendants every 20 ms, until SIGTERM
  report DIR                 the side-by-side table from DIR/runs.tsv
"""

import csv
import hashlib
import json
import os
import signal
import socket
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def ha1(users_csv, out_dir):
    """Kamailio's htable loads `ha1` from a db_text directory at start-up:
    key_name = username, key_value = MD5(username:realm:password), realm
    being the user's domain (the realm kamailio.cfg challenges with)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "version"), "w") as f:
        f.write("table_name(str) table_version(int)\nha1:2\n")
    n = 0
    with open(users_csv, newline="") as src, open(os.path.join(out_dir, "ha1"), "w") as f:
        f.write("key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n")
        for row in csv.DictReader(src, skipinitialspace=True):
            user, pw, dom = (row[k].strip() for k in ("username", "password", "domain"))
            if any(c in user for c in ":\\\n\r\t"):
                sys.exit(f"username {user!r} cannot go into a db_text row")
            h = hashlib.md5(f"{user}:{dom}:{pw}".encode()).hexdigest()
            f.write(f"{user}:0:0:{h}:0\n")
            n += 1
    print(f"{n} HA1 rows in {out_dir}/ha1")


def probe(ip, port, seconds):
    """OPTIONS until any SIP response comes back (a 200, a 401, a 405: the
    server is reading its socket)."""
    deadline = time.monotonic() + float(seconds)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.connect((ip, int(port)))
    lport = s.getsockname()[1]
    i = 0
    while time.monotonic() < deadline:
        i += 1
        msg = (
            f"OPTIONS sip:{ip}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};rport;branch=z9hG4bKprobe{os.getpid()}x{i}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=p{i}\r\n"
            f"To: <sip:{ip}:{port}>\r\n"
            f"Call-ID: probe-{os.getpid()}-{i}\r\n"
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            s.send(msg.encode())
            s.settimeout(0.3)
            if s.recv(65535).startswith(b"SIP/2.0 "):
                return 0
        except OSError:  # refused (not bound yet) or timed out
            time.sleep(0.2)
    return 1


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pid):
    """utime + stime of all threads of one process, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def sample(out, root):
    """A server may be several processes (Kamailio forks its workers), so
    sb-loadgen's --server-pid, which reads one /proc/PID/stat, would miss
    most of its CPU. This reads the whole tree. A process that exits keeps
    its last figure, so the sum never goes backwards."""
    root = int(root)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    last = {}
    pids, rescan = [], 0.0
    with open(out, "w", buffering=1) as f:
        while not stop:
            now = time.time()
            if now >= rescan:
                pids, rescan = descendants(root), now + 2.0
            for p in pids:
                t = cpu_ticks(p)
                if t is not None:
                    last[p] = t
            f.write(f"{now:.6f} {sum(last.values())} {len(pids)}\n")
            if not running(root):
                break
            time.sleep(0.02)


def cpu_at(samples, t):
    """Tree CPU seconds at wall-clock time t, interpolated between samples."""
    if not samples:
        return None
    if t <= samples[0][0]:
        return samples[0][1]
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if t0 <= t <= t1:
            return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
    return samples[-1][1]


def load_samples(path):
    """[(time, CPU seconds)] and the most processes seen in the tree."""
    out, procs = [], 0
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 3:
                    out.append((float(p[0]), int(p[1]) / TICKS))
                    procs = max(procs, int(p[2]))
    except OSError:
        pass
    return out, procs


def fmt(x, digits=2):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def ratio(a, b):
    return f"{a / b:.1f}×" if a is not None and b else "–"


def report(d):
    """runs.tsv: server, label, kind, json file, samples file, start, end."""
    rows = []
    with open(os.path.join(d, "runs.tsv")) as f:
        for line in f:
            server, work, kind, jpath, spath, t0, t1 = line.rstrip("\n").split("\t")
            try:
                with open(jpath) as jf:
                    r = json.loads(jf.read().strip().splitlines()[-1])
            except (OSError, ValueError, IndexError):
                r = None
            rows.append((server, work, kind, r, spath, float(t0), float(t1)))

    table = []
    for server, work, kind, r, spath, t0, t1 in rows:
        if r is None:
            table.append(dict(server=server, work=work, done=None))
            continue
        if kind == "register":
            lat = r["latency_ms"]
            own = (r.get("server_cpu") or {}).get("us_per_op")
            start = t0  # sb-loadgen reads --server-pid before and after the whole run
        else:
            lat = r["setup_latency_ms"]
            own = r.get("server_us_per_call")
            # the call phase is the last wall_s seconds (callees register first)
            start = t1 - float(r["wall_s"])
        samples, procs = load_samples(spath)
        if procs > 1:
            own = f"n/a: 1 of {procs} processes"
        a, b = cpu_at(samples, start), cpu_at(samples, t1)
        done = r["completed"]
        tree = (b - a) * 1e6 / done if a is not None and b is not None and done else None
        if tree is not None and b - a < 1.0 / TICKS:
            tree = None  # under one clock tick: too little work to see
        fails = r.get("failures") or {}
        extra = ""
        if kind == "calls":
            reg = r["registration"]
            if reg["registered"] != reg["attempted"]:
                extra = f" (callees {reg['registered']}/{reg['attempted']})"
        table.append(
            dict(
                server=server,
                work=work,
                done=done,
                failed=r["failed"],
                why=", ".join(f"{k} {v}" for k, v in fails.items()) + extra,
                p50=lat.get("p50"),
                p99=lat.get("p99"),
                cpu=tree,
                own=own,
                rate=r.get("achieved_rate"),
            )
        )

    print("| work | server | completed / failed | p50 ms | p99 ms | server CPU µs/op | (--server-pid µs/op) |")
    print("|---|---|---|---|---|---|---|")
    for t in table:
        if t["done"] is None:
            print(f"| {t['work']} | {t['server']} | no report | | | | |")
            continue
        failed = f"{t['failed']}" + (f" ({t['why']})" if t["why"] else "")
        print(
            f"| {t['work']} | {t['server']} | {t['done']:,} / {failed} | {fmt(t['p50'])} | "
            f"{fmt(t['p99'])} | {fmt(t['cpu'], 0)} | "
            f"{t['own'] if isinstance(t['own'], str) else fmt(t['own'], 0)} |"
        )
    print()
    print("Ratios Switchboard / Kamailio (same work, same run):")
    by = {}
    for t in table:
        by.setdefault(t["work"], []).append(t)
    for work, ts in by.items():
        kam = [t for t in ts if t["server"].startswith("kamailio") and t["done"]]
        for sb in (t for t in ts if t["server"].startswith("switchboard") and t["done"]):
            if not kam:
                continue
            k = kam[0]
            print(
                f"  {work}, {sb['server']}: p50 {ratio(sb['p50'], k['p50'])}, "
                f"p99 {ratio(sb['p99'], k['p99'])}, CPU/op {ratio(sb['cpu'], k['cpu'])}"
            )
    print()
    print(
        "server CPU = utime+stime of the server's whole process tree (/proc, 20 ms samples) "
        "over the register run, or over the call phase of a calls run (callee registrations "
        "excluded), divided by completed operations. (--server-pid) is sb-loadgen's own figure "
        "from one /proc/PID/stat, which sees one process only. "
        "A Postgres server's own CPU is not counted (it is not the server's process tree)."
    )
    return 0 if all(t["done"] is not None and t["failed"] == 0 for t in table) else 1


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "ha1" and len(args) == 2:
        ha1(*args)
        return 0
    if cmd == "probe" and len(args) == 3:
        return probe(*args)
    if cmd == "sample" and len(args) == 2:
        sample(*args)
        return 0
    if cmd == "report" and len(args) == 1:
        return report(args[0])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
