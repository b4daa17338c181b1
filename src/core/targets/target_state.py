# Fluid's read-only state program for production targets.
#
# Usage: python3 - SCOPE_BASE64 < target_state.py
#
# Fluid runs this on a target (as root, through the target's become method) to fingerprint the state
# a change touches, before it is approved (the baseline), right before it is applied (drift), and
# after (the new baseline). It only reads: stat and read files, ask dpkg/rpm, systemctl and the
# account databases. It never writes a file, so the fingerprint cannot change what it measures.
#
# SCOPE_BASE64 is base64 of JSON: {"packages": [...], "files": [...], "units": [...],
# "users": [...], "groups": [...], "sysctl": [...]}. It prints one JSON object with the same keys,
# each mapping a name to its state (null when absent). Password hashes never leave the machine: a
# user's password is reported as set/locked/disabled/empty plus a sha256 of the shadow field.
import base64
import grp
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys

TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
}


def owner_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


CRON_FILES = ("/etc/crontab",)
CRON_DIRS = ("/etc/cron.d/", "/var/spool/cron/crontabs/", "/var/spool/cron/tabs/")


def cron_entries(data):
    """Digests of a cron file's entries (comments and blank lines aside, whitespace normalised): the
    cron module marks its entries with comments, so entries say whether two cron files schedule the
    same things. Digests, not text: a production crontab may hold secrets."""
    out = set()
    for line in data.decode("utf-8", "replace").splitlines():
        line = " ".join(line.split())
        if line and not line.startswith("#"):
            out.add(hashlib.sha256(line.encode("utf-8")).hexdigest())
    return sorted(out)


def file_state(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    kind = TYPES.get(stat.S_IFMT(st.st_mode), "other")
    out = {
        "type": kind,
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
        "user": owner_name(st.st_uid),
        "group": group_name(st.st_gid),
        "size": st.st_size if kind == "file" else 0,
        "sha256": None,
        "target": None,
    }
    if kind == "file":
        h = hashlib.sha256()
        cron = path in CRON_FILES or path.startswith(CRON_DIRS)
        kept = []
        # O_NOFOLLOW|O_NONBLOCK: a path swapped for a link or a FIFO after the lstat is not followed
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                if cron and sum(len(k) for k in kept) < (4 << 20):
                    kept.append(chunk)
        out["sha256"] = h.hexdigest()
        if cron:
            out["entries"] = cron_entries(b"".join(kept))
    elif kind == "symlink":
        out["target"] = os.readlink(path)
    return out


def packages(names):
    out = {n: None for n in names}
    if not names:
        return out
    if shutil.which("dpkg-query"):
        r = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package}:${Architecture}\t${Package}\t${db:Status-Abbrev}\t${Version}\n", "--"]
            + names,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,
        )
        for line in r.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) != 4:
                continue
            full, short, status, version = parts
            installed = status.strip().startswith("ii") or status.strip().startswith("hi")
            for key in (full, short):
                if key in out:
                    out[key] = version if installed else None
    elif shutil.which("rpm"):
        for n in names:
            r = subprocess.run(
                ["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\n", "--", n],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                universal_newlines=True,
            )
            if r.returncode == 0 and r.stdout.strip():
                out[n] = r.stdout.strip().splitlines()[0]
    return out


def units(names):
    out = {}
    if not names:
        return out
    if not shutil.which("systemctl"):
        return {n: {"load": "unknown", "active": "unknown", "enabled": "unknown", "fragment": None} for n in names}
    r = subprocess.run(
        ["systemctl", "show", "--no-pager", "-p", "Id,LoadState,ActiveState,UnitFileState,FragmentPath", "--"] + names,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        universal_newlines=True,
    )
    blocks = [b for b in r.stdout.split("\n\n") if b.strip()]
    for name, block in zip(names, blocks):
        kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        out[name] = {
            "load": kv.get("LoadState", ""),
            "active": kv.get("ActiveState", ""),
            "enabled": kv.get("UnitFileState", ""),
            "fragment": kv.get("FragmentPath") or None,
        }
    for n in names:
        out.setdefault(n, {"load": "unknown", "active": "unknown", "enabled": "unknown", "fragment": None})
    return out


def shadow_fields():
    fields = {}
    try:
        with open("/etc/shadow") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) > 1:
                    fields[parts[0]] = parts[1]
    except OSError:
        pass
    return fields


def password_status(field):
    if field is None:
        return None
    if field == "":
        return "empty"
    if field.startswith("!"):
        return "locked"
    if field.startswith("*"):
        return "disabled"
    return "set"


def users(names):
    out = {}
    shadow = shadow_fields() if names else {}
    all_groups = grp.getgrall() if names else []
    for n in names:
        try:
            p = pwd.getpwnam(n)
        except KeyError:
            out[n] = None
            continue
        field = shadow.get(n)
        out[n] = {
            "uid": p.pw_uid,
            "gid": p.pw_gid,
            "gecos": p.pw_gecos,
            "home": p.pw_dir,
            "shell": p.pw_shell,
            "groups": sorted(g.gr_name for g in all_groups if n in g.gr_mem),
            "password": password_status(field),
            "passwordDigest": hashlib.sha256(field.encode()).hexdigest() if field is not None else None,
        }
    return out


def groups(names):
    out = {}
    for n in names:
        try:
            g = grp.getgrnam(n)
        except KeyError:
            out[n] = None
            continue
        out[n] = {"gid": g.gr_gid, "members": sorted(g.gr_mem)}
    return out


def sysctl(names):
    out = {}
    for n in names:
        if not n or n.startswith(".") or ".." in n or "/" in n:
            out[n] = None
            continue
        try:
            with open("/proc/sys/" + n.replace(".", "/")) as f:
                out[n] = " ".join(f.read().split())
        except OSError:
            out[n] = None
    return out


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python3 - SCOPE_BASE64 < target_state.py\n")
        return 2
    scope = json.loads(base64.b64decode(argv[1]).decode("utf-8"))
    files = {}
    for path in scope.get("files", []):
        if not path.startswith("/"):
            files[path] = None
            continue
        files[path] = file_state(path)
    doc = {
        "packages": packages(list(scope.get("packages", []))),
        "files": files,
        "units": units(list(scope.get("units", []))),
        "users": users(list(scope.get("users", []))),
        "groups": groups(list(scope.get("groups", []))),
        "sysctl": sysctl(list(scope.get("sysctl", []))),
    }
    sys.stdout.write(json.dumps(doc, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
