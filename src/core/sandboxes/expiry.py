#!/usr/bin/env python3
"""Fluid's host-side sandbox expiry: sandboxes past their time to live are destroyed on the host
itself, whether or not any Fluid process runs.

Fluid installs this program as <root>/expiry/expiry.py, where <root> is
<storage dir>/<installation id>, and keeps one entry per sandbox in <root>/expiry/<id>.json:

    {"id": "<sandbox uuid>", "domain": "fluid-…", "uri": "qemu:///system",
     "dir": "<root>/sandboxes/<id>", "at": <unix seconds>}

`at` is the sandbox's expiry plus a grace period: while Fluid runs, its own janitor removes the
sandbox on time (and audits it); this watchdog is the backstop. When an entry is due the watchdog
destroys and undefines the domain (only a domain labelled as this installation's sandbox with that
id), removes the sandbox's directory, and leaves a tombstone <id>.expired that Fluid's reconcile
reads, audits and removes. The address reservation is left for Fluid to release, so no new sandbox
reuses the address (and its egress allowances) before Fluid knows the old one is gone.

Commands (Python 3.9+, standard library only):
    expiry.py arm ROOT [--replace]   entries as a JSON list on stdin (invalid ones are refused and
                                     reported); start the watcher if none runs
    expiry.py disarm ROOT [ID…]      forget these entries and tombstones; tidy up when nothing is left
    expiry.py watch ROOT             the watcher: sleeps until the next entry is due (at most a
                                     minute), expires what is due, exits when no entry is left
    expiry.py once ROOT              one pass, then exit
    expiry.py status ROOT            JSON: entries, tombstones, the watcher's pid

The watcher runs as a transient systemd service where systemd is the init system, otherwise as a
detached process (its own session, no terminal). One watcher per installation: it holds a lock on
<root>/expiry/.alive. Entries change under <root>/expiry/.state, which the watcher also takes for
each pass, so an entry written while the watcher decides to exit is never missed: the watcher gives
up .alive before .state, and `arm` starts a new watcher after writing under .state.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

FLUID_NS = "https://fluid.dev/xmlns/libvirt/1"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DOMAIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
NOT_FOUND_RE = re.compile(r"failed to get domain|domain not found|no domain with matching", re.I)
MAX_SLEEP = 60
LOG_MAX = 256 * 1024


def expiry_dir(root):
    return os.path.join(root, "expiry")


def log(d, message):
    path = os.path.join(d, "watch.log")
    try:
        if os.path.getsize(path) > LOG_MAX:
            os.replace(path, path + ".1")
    except OSError:
        pass
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write("%s [%d] %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.getpid(), message))
    except OSError:
        pass


class StateLock:
    """An exclusive lock on <dir>/.state that survives the directory being tidied away meanwhile."""

    def __init__(self, d):
        self.d = d
        self.fd = None

    def __enter__(self):
        while True:
            os.makedirs(self.d, mode=0o700, exist_ok=True)
            path = os.path.join(self.d, ".state")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)  # tidied away while we waited: take the lock of the new file

    def __exit__(self, *exc):
        os.close(self.fd)
        self.fd = None


def valid_entry(root, e):
    if not isinstance(e, dict):
        return "not an object"
    sid = e.get("id")
    if not isinstance(sid, str) or not UUID_RE.match(sid):
        return "id is not a sandbox id"
    if not isinstance(e.get("domain"), str) or not DOMAIN_RE.match(e["domain"]):
        return "bad domain name"
    if not isinstance(e.get("uri"), str) or not e["uri"] or "\n" in e["uri"]:
        return "bad libvirt URI"
    if e.get("dir") != os.path.join(root, "sandboxes", sid):
        return "dir is not this installation's directory of that sandbox"
    if not isinstance(e.get("at"), (int, float)) or isinstance(e.get("at"), bool):
        return "at is not a time"
    return None


def entries(d):
    out = []
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return out
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            with open(os.path.join(d, name), encoding="utf-8") as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            continue
    return out


def tombstones(d):
    out = []
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return out
    for name in names:
        if name.endswith(".expired"):
            try:
                with open(os.path.join(d, name), encoding="utf-8") as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                out.append({"id": name[: -len(".expired")]})
    return out


def write_json(path, value):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def virsh(uri, *args):
    return subprocess.run(
        ["virsh", "-q", "-c", uri, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=120,
        check=False,
    )


def labelled(domain_xml, sandbox_id, installation):
    """Whether the domain carries Fluid's label for exactly this sandbox of this installation."""
    try:
        dom = ET.fromstring(domain_xml)
    except ET.ParseError:
        return False
    for el in dom.iter("{%s}sandbox" % FLUID_NS):
        if el.get("id") == sandbox_id and el.get("installation") == installation:
            return True
    return False


def expire(root, d, e):
    sid, uri, domain = e["id"], e["uri"], e["domain"]
    installation = os.path.basename(os.path.normpath(root))
    destroyed = False
    dump = virsh(uri, "dumpxml", domain)
    if dump.returncode == 0:
        if not labelled(dump.stdout, sid, installation):
            # Not this installation's sandbox under that name: touch nothing, forget the entry.
            log(d, "%s: domain %s is not labelled as this sandbox; left alone" % (sid, domain))
            os.unlink(os.path.join(d, sid + ".json"))
            return
        virsh(uri, "destroy", domain)
        if virsh(uri, "undefine", domain, "--nvram", "--snapshots-metadata").returncode != 0:
            virsh(uri, "undefine", domain, "--snapshots-metadata")
        destroyed = True
    elif not NOT_FOUND_RE.search(dump.stderr):
        log(d, "%s: cannot read domain %s (%s); trying again later" % (sid, domain, dump.stderr.strip()))
        return
    sandbox_dir = os.path.join(root, "sandboxes", sid)
    if e.get("dir") == sandbox_dir and os.path.isdir(sandbox_dir):
        shutil.rmtree(sandbox_dir, ignore_errors=True)
    write_json(
        os.path.join(d, sid + ".expired"),
        {"id": sid, "domain": domain, "at": e["at"], "expiredAt": time.time(), "destroyed": destroyed},
    )
    try:
        os.unlink(os.path.join(d, sid + ".json"))
    except FileNotFoundError:
        pass
    log(d, "%s: expired (domain %s %s)" % (sid, domain, "destroyed" if destroyed else "already gone"))


def sweep(root, d):
    """Expire what is due; returns the entries left."""
    now = time.time()
    for e in entries(d):
        if valid_entry(root, e) is not None:
            continue
        if e["at"] <= now:
            try:
                expire(root, d, e)
            except Exception as err:  # one bad entry must not stop the others
                log(d, "%s: could not expire: %s" % (e.get("id"), err))
    return [e for e in entries(d) if valid_entry(root, e) is None]


def watcher_pid(d):
    try:
        with open(os.path.join(d, ".alive"), encoding="utf-8") as f:
            pid = int(f.read().strip() or "0")
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().split(b"\0")
    except OSError:
        return None
    return pid if any(c.endswith(b"expiry.py") for c in cmd) and b"watch" in cmd else None


def tidy(d, stop_watcher):
    """Held under .state: with no entry and no tombstone left, remove everything (and the watcher)."""
    if entries(d) or tombstones(d):
        return False
    if stop_watcher:
        pid = watcher_pid(d)
        if pid and pid != os.getpid():
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
    for name in os.listdir(d):
        path = os.path.join(d, name)
        if os.path.isfile(path) or os.path.islink(path):
            os.unlink(path)
    try:
        os.rmdir(d)
        os.rmdir(os.path.dirname(d))  # the installation's directory, if nothing else is in it
    except OSError:
        pass
    return True


def watcher_holds_alive(d):
    fd = os.open(os.path.join(d, ".alive"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def start_watcher(root, d):
    script = os.path.abspath(__file__)
    if os.path.isdir("/run/systemd/system") and shutil.which("systemd-run"):
        unit = "fluid-expiry-%s-%d" % (os.path.basename(os.path.normpath(root))[:8], time.time_ns())
        r = subprocess.run(
            [
                "systemd-run",
                "--unit",
                unit,
                "--description",
                "Fluid sandbox expiry (%s)" % root,
                "--collect",
                "--quiet",
                sys.executable,
                script,
                "watch",
                root,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            check=False,
        )
        if r.returncode == 0:
            return "systemd"
        log(d, "systemd-run failed (%s); starting a detached watcher instead" % r.stderr.strip())
    subprocess.Popen(
        [sys.executable, script, "watch", root],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd="/",
    )
    return "process"


def cmd_arm(root, d, replace):
    wanted = json.load(sys.stdin)
    if not isinstance(wanted, list):
        raise SystemExit("arm: expected a JSON list of entries on stdin")
    refused = []
    valid = []
    for e in wanted:
        problem = valid_entry(root, e)
        if problem:
            refused.append({"id": e.get("id") if isinstance(e, dict) else None, "problem": problem})
        else:
            valid.append(e)
    with StateLock(d):
        expired = {t.get("id") for t in tombstones(d)}
        keep = set()
        for e in valid:
            if e["id"] in expired:
                continue  # the host already expired it; Fluid learns that from the tombstone
            write_json(os.path.join(d, e["id"] + ".json"), e)
            keep.add(e["id"])
        if replace:
            for e in entries(d):
                if isinstance(e, dict) and e.get("id") not in keep and isinstance(e.get("id"), str):
                    try:
                        os.unlink(os.path.join(d, "%s.json" % e["id"]))
                    except FileNotFoundError:
                        pass
        armed = len([e for e in entries(d) if valid_entry(root, e) is None])
        if not armed:
            how = "none"
            tidy(d, stop_watcher=False)
        elif watcher_holds_alive(d):
            # Checked under .state: a watcher that holds .alive now decides to exit only under
            # .state, after this entry is written, so it will see it.
            how = "running"
        else:
            how = start_watcher(root, d)
        gone = tombstones(d)
    print(json.dumps({"watcher": how, "entries": armed, "expired": gone, "refused": refused}))


def cmd_disarm(root, d, ids):
    for sid in ids:
        if not UUID_RE.match(sid):
            raise SystemExit("disarm: %r is not a sandbox id" % sid)
    if not os.path.isdir(d):
        print(json.dumps({"tidied": True}))
        return
    with StateLock(d):
        for sid in ids:
            for suffix in (".json", ".expired"):
                try:
                    os.unlink(os.path.join(d, sid + suffix))
                except FileNotFoundError:
                    pass
        tidied = tidy(d, stop_watcher=True)
    print(json.dumps({"tidied": tidied}))


def cmd_watch(root, d):
    os.makedirs(d, mode=0o700, exist_ok=True)
    alive = os.open(os.path.join(d, ".alive"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(alive, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another watcher runs
    os.ftruncate(alive, 0)
    os.write(alive, str(os.getpid()).encode())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log(d, "watching")
    while True:
        with StateLock(d):
            left = sweep(root, d)
            if not left:
                # Give up .alive before .state: whoever writes an entry next finds no watcher.
                log(d, "nothing left to watch; exiting")
                os.close(alive)
                tidy(d, stop_watcher=False)
                return
            due = min(e["at"] for e in left)
        time.sleep(max(1.0, min(MAX_SLEEP, due - time.time())))


def cmd_status(root, d):
    print(json.dumps({"entries": entries(d), "expired": tombstones(d), "watcher": watcher_pid(d)}))


def main(argv):
    if len(argv) < 3 or argv[1] not in ("arm", "disarm", "watch", "once", "status"):
        sys.stderr.write(__doc__)
        return 2
    cmd, root = argv[1], os.path.normpath(argv[2])
    if not os.path.isabs(root):
        sys.stderr.write("ROOT must be an absolute path\n")
        return 2
    d = expiry_dir(root)
    if cmd == "arm":
        cmd_arm(root, d, "--replace" in argv[3:])
    elif cmd == "disarm":
        cmd_disarm(root, d, argv[3:])
    elif cmd == "watch":
        cmd_watch(root, d)
    elif cmd == "once":
        with StateLock(d):
            sweep(root, d)
    else:
        cmd_status(root, d)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
