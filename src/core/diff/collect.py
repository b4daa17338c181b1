"""fluid-diff: what changed on a sandbox's disk, read on the libvirt host, never through the guest.

Fluid sends this program to a host over its own stdin and runs it as root inside a private mount
namespace (`unshare --mount --propagation private`), so every mount it makes disappears with it, even
when it is killed. The request follows the program on stdin as one JSON object; the answer is one JSON
object on stdout. Python 3.9+ standard library only.

How a diff is read
  1. Views. Each side of the diff ("from", "to") is a disk state: the sandbox's baseline layer, the
     current disk (for a running sandbox: a quiesced, short-lived external layer taken through libvirt
     and committed back afterwards; for a stopped one: the disk as it is), or a snapshot (an internal
     qcow2 snapshot is materialised as a small overlay with `qemu-img convert -l`; an external one is
     its frozen layer). Each view is exported read-only by qemu-storage-daemon over FUSE as a raw
     image, loop-mounted read-only. A filesystem whose journal still needs recovery is mounted through
     a throwaway writable overlay, so the kernel replays the journal there (never into Fluid's layers).
  2. Changed paths, two ways, both exact:
     - "fast" (ext2/3/4 whose chain holds the baseline): `qemu-img map` of each view lists the clusters
       written above the baseline layer; the ones inside inode tables name candidate inodes; an inode
       whose on-disk record differs between the two views changed. An index of the baseline's inode
       numbers -> paths (built once per sandbox, kept beside its layers) gives their paths, and a walk
       that descends only towards those paths and into directories that changed compares them.
       Cost follows the size of the change, not of the disk.
     - "walk": both trees walked completely and compared entry by entry (the fallback).
  3. Typed changes. Collectors turn their files into packages (dpkg status; rpm's sqlite database),
     systemd units and their enablement, users and groups (passwd, group, shadow without the fields
     that change by themselves, and without any password hash), sudoers, cron, sysctl and
     modules-load settings. Noise rules (data, sent with the request) filter the rest; every filtered
     path is returned with the rule that filtered it. What remains are file changes with content
     diffs for text, sizes and hashes for binaries; sensitive files never carry content.

Request:  {"protocol": 1, "op": "diff" | "probe", ...}  (see Request in src/core/diff/host.ts)
Answer:   {"protocol": 1, "ok": true, ...} or {"protocol": 1, "ok": false, "error": {"code", "message"}}
"""
import contextlib
import ctypes
import datetime
import difflib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import time

PROTOCOL = 1
INDEX_VERSION = 1


class Fail(Exception):
    """An error with one of Fluid's error codes and a message that says what to do."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


# ---- entry ---------------------------------------------------------------------------------------


def main(stdin=None, stdout=None):
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    try:
        req = json.loads(stdin.read().decode("utf-8"))
        if req.get("protocol") != PROTOCOL:
            raise Fail("INTERNAL", "fluid-diff speaks protocol %d, the request is %r" % (PROTOCOL, req.get("protocol")))
        op = req.get("op")
        if op == "probe":
            out = probe()
        elif op == "diff":
            out = run_diff(req)
        else:
            raise Fail("VALIDATION", "unknown operation %r" % (op,))
        out["protocol"] = PROTOCOL
        out["ok"] = True
    except Fail as e:
        out = {"protocol": PROTOCOL, "ok": False, "error": {"code": e.code, "message": e.message}}
    except Exception as e:  # a bug: say where
        import traceback

        out = {
            "protocol": PROTOCOL,
            "ok": False,
            "error": {"code": "INTERNAL", "message": "fluid-diff failed: %s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()[-3000:])},
        }
    stdout.write(json.dumps(out, separators=(",", ":"), sort_keys=True))
    stdout.write("\n")
    stdout.flush()
    return 0 if out.get("ok") else 1


def probe():
    """What this host offers for reading disks (the same facts the preflight reports)."""
    tools = {}
    for t in ("qemu-storage-daemon", "qemu-img", "losetup", "mount", "umount", "unshare", "virsh"):
        tools[t] = shutil.which(t) is not None
    return {
        "tools": tools,
        "fuse": os.path.exists("/dev/fuse"),
        "loop": os.path.exists("/dev/loop-control"),
        "root": os.geteuid() == 0,
        "python": "%d.%d" % sys.version_info[:2],
    }


def run_diff(req):
    t0 = time.time()
    timings = {}
    warnings = []
    lock = req.get("lock")
    with host_lock(lock), Workspace(req["workdir"], req.get("tmpdir")) as ws:
        views = {}
        consistency = {"mode": "image", "detail": ""}
        with contextlib.ExitStack() as stack:
            for side in ("from", "to"):
                spec = req[side]
                if spec["kind"] == "live":
                    if spec.get("running"):
                        # Snapshot steps take the same lock: no snapshot can freeze our short-lived layer.
                        stack.enter_context(host_lock(spec.get("snapshotLock"), mode=0o755))
                        image, consistency = stack.enter_context(live_layer(spec, ws, warnings))
                    else:
                        image = current_top(spec)
                        consistency = {"mode": "stopped", "detail": "the sandbox is stopped: its disk was read as it is"}
                    spec = {"kind": "image", "image": image, "snapshot": None, "label": "now"}
                elif side == "to" and (spec["kind"] == "snapshot" or str(spec.get("label", "")).startswith("snapshot")):
                    consistency = {"mode": "snapshot", "detail": "read from %s" % (spec.get("label") or "snapshot %s" % spec.get("name"))}
                views[side] = stack.enter_context(open_view(ws, side, resolve_view(spec, req)))
            timings["open"] = ms(t0)
            t1 = time.time()
            rules = Rules(req["rules"])
            limits = req.get("limits") or {}
            method = req.get("method", "auto")
            a, b = views["from"], views["to"]
            fast_why = fast_path_unavailable(a, b, req)
            if method == "fast" and fast_why:
                raise Fail("UNAVAILABLE", "The fast diff cannot be used here: %s." % fast_why)
            stats = {}
            if method == "walk" or fast_why:
                if method == "auto" and fast_why:
                    warnings.append("Compared every file (the fast path needs %s)." % fast_why)
                raw = walk_compare(a.root, b.root, None, stats)
                used = "walk"
            else:
                t_idx = time.time()
                index = ensure_index(req, a if req["from"]["kind"] == "baseline" else None, ws, stats)
                timings["index"] = ms(t_idx)
                cand = changed_inodes(a, b, req["baseline"], stats)
                timings["blocks"] = ms(t_idx) - timings["index"]
                hint = DescendHint(index.paths_of(cand), cand)
                stats["indexedPaths"] = hint.count
                raw = walk_compare(a.root, b.root, hint, stats)
                used = "fast"
            timings["compare"] = ms(t1)
            t2 = time.time()
            result = classify(a.root, b.root, raw, rules, limits, warnings)
            timings["classify"] = ms(t2)
            stats["changedPaths"] = len(raw)
        if b.others:
            warnings.append("Only the root filesystem was read; also on the disk: %s." % ", ".join(b.others))
        timings["total"] = ms(t0)
    fs = {"type": b.fstype, "partition": b.partition, "replayed": [s for s, v in (("from", a), ("to", b)) if v.replayed]}
    return {
        "method": used,
        "consistency": consistency,
        "items": result["items"],
        "noise": result["noise"],
        "stats": stats,
        "timings": timings,
        "warnings": warnings,
        "filesystem": fs,
    }


def ms(since):
    return int(round((time.time() - since) * 1000))


# ---- host plumbing: lock, workspace, commands ------------------------------------------------------


@contextlib.contextmanager
def host_lock(path, mode=0o700):
    """An exclusive flock on a file (one diff per sandbox at a time; a second waits)."""
    if not path:
        yield
        return
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, mode)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Workspace:
    """A private tmpfs for mountpoints and FUSE export files (gone with the namespace), plus a
    disk-backed directory for temporary overlays, which are unlinked as soon as they are open."""

    def __init__(self, workdir, tmpdir):
        self.workdir = workdir
        self.tmpdir = tmpdir or os.path.join(workdir, "tmp")
        self.mounted = False

    def __enter__(self):
        os.makedirs(self.workdir, exist_ok=True)
        if os.geteuid() != 0:
            raise Fail("UNAVAILABLE", "Reading sandbox disks needs root on the host (loop devices and mounts).")
        if enter_private_mount_namespace():
            run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "fluid-diff", self.workdir])
            self.mounted = True
        os.makedirs(self.tmpdir, exist_ok=True)
        # We hold the sandbox's lock: anything left here is from a run that was killed.
        for name in os.listdir(self.tmpdir):
            if name.startswith("fluid-diff-"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.tmpdir, name))
        return self

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", "-l", self.workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return False

    def path(self, name):
        return os.path.join(self.workdir, name)

    def tmp_overlay(self, label):
        fd, path = tempfile.mkstemp(prefix="fluid-diff-%s-" % label, suffix=".qcow2", dir=self.tmpdir)
        os.close(fd)
        return path


def enter_private_mount_namespace():
    """Move this process into a mount namespace of its own: every mount made from here on (the
    tmpfs, loop mounts, FUSE exports) disappears with the process and its helpers, even on SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        return False
    return subprocess.run(["mount", "--make-rprivate", "/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def run(args, check=True, input=None, timeout=300):
    p = subprocess.run(args, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if check and p.returncode != 0:
        raise Fail("INTERNAL", "%s failed (exit %d): %s" % (" ".join(args[:3]), p.returncode, (p.stderr or p.stdout).decode("utf-8", "replace").strip()[-1500:]))
    return p.stdout.decode("utf-8", "replace")


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: a helper must not outlive this program (it would pin the namespace).
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


# ---- views: which disk state each side is ----------------------------------------------------------


def resolve_view(spec, req):
    """{'kind': 'baseline'|'image'|'snapshot', ...} -> {'image': path, 'snapshot': internal name or None}."""
    kind = spec["kind"]
    if kind == "baseline":
        return {"image": req["baseline"], "snapshot": None, "label": "baseline"}
    if kind == "image":
        return {"image": spec["image"], "snapshot": spec.get("snapshot"), "label": spec.get("label", "image")}
    if kind == "snapshot":
        image, internal = find_snapshot(spec, req)
        return {"image": image, "snapshot": internal, "label": "snapshot %s" % spec["name"]}
    raise Fail("VALIDATION", "unknown view kind %r" % (kind,))


def find_snapshot(spec, req):
    """Where a libvirt snapshot keeps the disk state: (image, internal snapshot name or None)."""
    name, disk = spec["name"], req["disk"]
    xml = ""
    if spec.get("domain"):
        p = subprocess.run(virsh(spec["uri"], ["snapshot-dumpxml", spec["domain"], name]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode == 0:
            xml = p.stdout.decode("utf-8", "replace")
    if xml:
        snap_disk = re.search(r"<disks>.*?<disk[^>]*\bname=['\"]%s['\"][^>]*>" % re.escape(disk), xml, re.S)
        external = bool(snap_disk and "snapshot='external'" in snap_disk.group(0).replace('"', "'"))
        dom = xml.split("<domain", 1)[1] if "<domain" in xml else ""
        src = None
        for m in re.finditer(r"<disk\b.*?</disk>", dom, re.S):
            if re.search(r"<target[^>]*\bdev=['\"]%s['\"]" % re.escape(disk), m.group(0)):
                f = re.search(r"<source[^>]*\bfile=['\"]([^'\"]+)['\"]", m.group(0))
                src = f.group(1) if f else None
                break
        if src:
            return (src, None) if external else (src, name)
    # No libvirt metadata: look for an internal snapshot of that name in the current chain.
    start = current_top({"uri": spec["uri"], "domain": spec["domain"], "disk": disk}) if spec.get("domain") else spec.get("image")
    for img in chain_of(start) if start else []:
        if name in [s.get("name") for s in img.get("snapshots", [])]:
            return img["filename"], name
    raise Fail("NOT_FOUND", "Snapshot %r of disk %s was not found on the host (neither in libvirt nor in the disk chain)." % (name, disk))


def current_top(spec):
    """The file a domain's disk currently writes to (libvirt's view, whatever layers snapshots added)."""
    out = run(virsh(spec["uri"], ["domblklist", "--details", spec["domain"]]))
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[1] == "disk" and parts[2] == spec["disk"]:
            return parts[3].strip()
    raise Fail("NOT_FOUND", "Disk %s of %s was not found." % (spec["disk"], spec["domain"]))


def virsh(uri, args):
    return ["virsh", "-q", "-c", uri] + args


def chain_of(image):
    """qemu-img's backing chain of an image, top first (each with its filename and snapshots)."""
    out = run(["qemu-img", "info", "-U", "--backing-chain", "--output=json", image])
    chain = json.loads(out)
    return chain if isinstance(chain, list) else [chain]


def same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def depth_of(chain, image):
    for i, c in enumerate(chain):
        if same_file(c["filename"], image):
            return i
    return None


@contextlib.contextmanager
def live_layer(spec, ws, warnings):
    """A running sandbox: freeze its filesystems through the guest agent, put a short-lived external
    layer on top of each disk (libvirt, --no-metadata), thaw, read the layer that was frozen, then
    commit the short-lived layer back into it and delete it. Writes the guest makes meanwhile land in
    the short-lived layer and are kept."""
    uri, dom, disk = spec["uri"], spec["domain"], spec["disk"]
    top = current_top(spec)
    if ".fluid-diff-" in os.path.basename(top):
        # A diff that was killed left its short-lived layer active: fold it back first.
        run(virsh(uri, ["blockcommit", dom, disk, "--active", "--shallow", "--pivot", "--wait"]))
        with contextlib.suppress(OSError):
            os.unlink(top)
        top = current_top(spec)
    layer = os.path.join(os.path.dirname(top), "%s.fluid-diff-%d.qcow2" % (disk, os.getpid()))
    args = ["snapshot-create-as", dom, "--disk-only", "--atomic", "--no-metadata", "--diskspec", "%s,file=%s,driver=qcow2" % (disk, layer)]
    for other in spec.get("otherDisks", []):
        args += ["--diskspec", "%s,snapshot=no" % other]
    t0 = time.time()
    p = subprocess.run(virsh(uri, args + ["--quiesce"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    consistency = {"mode": "quiesced-layer", "detail": "filesystems frozen through the guest agent while a short-lived layer was added (%d ms); the sandbox kept running" % ms(t0)}
    if p.returncode != 0:
        why = p.stderr.decode("utf-8", "replace").strip()[-300:]
        with contextlib.suppress(OSError):
            os.unlink(layer)
        p2 = subprocess.run(virsh(uri, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p2.returncode != 0:
            raise Fail("INTERNAL", "Could not take a short-lived layer of the running sandbox: %s" % p2.stderr.decode("utf-8", "replace").strip()[-1000:])
        consistency = {"mode": "crash-consistent-layer", "detail": "the guest agent could not freeze the filesystems (%s); read like a power cut, with the journal replayed" % why}
        warnings.append("The guest agent could not freeze the filesystems; the disk was read crash-consistent.")
    try:
        yield top, consistency
    finally:
        c = subprocess.run(virsh(uri, ["blockcommit", dom, disk, "--active", "--shallow", "--pivot", "--wait"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if c.returncode == 0:
            with contextlib.suppress(OSError):
                os.unlink(layer)
        else:
            # The sandbox keeps running on the extra layer; nothing is lost. Say so.
            warnings.append("The short-lived layer %s could not be committed back (%s); the sandbox runs on it." % (layer, c.stderr.decode("utf-8", "replace").strip()[-300:]))


class View:
    def __init__(self):
        self.image = None  # the image whose chain is exported (an overlay of ours, or the view image)
        self.chain = []
        self.raw = None  # the FUSE-exported raw disk
        self.root = None  # the mounted root filesystem
        self.fstype = None
        self.partition = None
        self.offset = 0
        self.ext = None  # Ext superblock facts (ext2/3/4)
        self.replayed = False
        self.others = []  # other filesystems on the disk, not read


@contextlib.contextmanager
def open_view(ws, side, v):
    """Export, attach and mount one view read-only. Everything is undone on exit."""
    view = View()
    undo = []
    try:
        image = v["image"]
        if not os.path.exists(image):
            raise Fail("NOT_FOUND", "The disk image %s does not exist on the host." % image)
        writable = False
        if v.get("snapshot"):
            # An internal snapshot: materialise just its top layer as an overlay on the same backing.
            top = chain_of(image)[0]
            tmp = ws.tmp_overlay(side)
            undo.append(Unlink(tmp))
            args = ["qemu-img", "convert", "-U", "-l", "snapshot.name=" + v["snapshot"], "-O", "qcow2"]
            if top.get("backing-filename"):
                backing = top.get("full-backing-filename") or top["backing-filename"]
                args += ["-B", backing, "-F", top.get("backing-filename-format", "qcow2")]
            run(args + [image, tmp], timeout=3600)
            image, writable = tmp, True
        view.chain = chain_of(image)
        raw = ws.path(side + ".raw")
        undo.append(export(image, raw, writable))
        view.raw, view.image = raw, image
        fs = find_filesystem(raw)
        view.fstype, view.partition, view.offset, view.ext = fs["type"], fs["partition"], fs["offset"], fs.get("ext")
        needs_replay = fs["type"] != "ext" or view.ext.needs_recovery
        if needs_replay and not writable:
            # Replay the journal into a throwaway overlay, never into the view's image.
            undo.pop().close()
            tmp = ws.tmp_overlay(side + "-replay")
            undo.append(Unlink(tmp))
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", view.chain[0].get("format", "qcow2"), "-b", image, tmp])
            undo.append(export(tmp, raw, True))
            view.chain = [{"filename": tmp}] + view.chain
            writable = True
        mnt = ws.path(side)
        os.makedirs(mnt, exist_ok=True)
        # A read-only view is mounted read-only without touching its journal. A throwaway overlay is
        # mounted read-write first (the kernel replays the journal into it; a read-only loop device
        # cannot be recovered), then remounted read-only before anything is read.
        # nodev, nosuid, noexec: nothing in the guest's tree is ever a device, a setuid program or an
        # executable for the host.
        opts = ["loop", "nodev", "nosuid", "noexec", "offset=%d" % fs["offset"]]
        if fs.get("size"):
            opts.append("sizelimit=%d" % fs["size"])
        if writable:
            opts.append("noatime")
        else:
            opts.append("ro")
            opts.append({"ext4": "noload", "xfs": "norecovery"}.get(fs["mount"], "ro"))
        run(["mount", "-t", fs["mount"], "-o", ",".join(opts), raw, mnt])
        undo.append(Mounted(mnt))
        if writable:
            run(["mount", "-o", "remount,ro", mnt])
        view.root = mnt
        if needs_replay:
            view.replayed = True
            with open(raw, "rb") as f:  # the replay's writes reach the overlay's metadata on disk
                os.fsync(f.fileno())
            if fs["type"] == "ext":
                view.ext = Ext.read(raw, fs["offset"])
        if fs.get("others"):
            view.others = fs["others"]
        yield view
    finally:
        for u in reversed(undo):
            u.close()


class Unlink:
    def __init__(self, path):
        self.path = path

    def close(self):
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class Mounted:
    def __init__(self, mnt):
        self.mnt = mnt

    def close(self):
        subprocess.run(["umount", self.mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Export:
    def __init__(self, proc, path):
        self.proc, self.path = proc, path

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def export(image, raw, writable):
    """qemu-storage-daemon: the image (with its backing chain) as a raw file over FUSE."""
    open(raw, "a").close()
    node = {
        "driver": "qcow2",
        "node-name": "disk",
        "read-only": not writable,
        "file": {"driver": "file", "filename": image, "locking": "off"},
    }
    exp = {"type": "fuse", "id": "exp", "node-name": "disk", "mountpoint": raw, "writable": writable}
    proc = subprocess.Popen(
        ["qemu-storage-daemon", "--blockdev", json.dumps(node), "--export", json.dumps(exp)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    end = time.time() + 30
    while True:
        if proc.poll() is not None:
            raise Fail("UNAVAILABLE", "qemu-storage-daemon could not export %s: %s" % (image, proc.stderr.read().decode("utf-8", "replace").strip()[-800:]))
        try:
            if os.stat(raw).st_size > 0:
                break
        except OSError:
            pass
        if time.time() > end:
            proc.kill()
            raise Fail("TIMEOUT", "qemu-storage-daemon did not export %s within 30 s." % image)
        time.sleep(0.01)
    return Export(proc, raw)


# ---- partitions and filesystems -------------------------------------------------------------------


def partitions(f, size):
    """(number, offset, length) of each MBR or GPT partition; [] for a filesystem on the whole disk."""
    f.seek(0)
    mbr = f.read(512)
    if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
        return []
    parts = []
    entries = [mbr[446 + 16 * i: 462 + 16 * i] for i in range(4)]
    if any(e[4] == 0xEE for e in entries):
        f.seek(512)
        hdr = f.read(92)
        if hdr[:8] != b"EFI PART":
            return []
        lba, count, esize = struct.unpack_from("<QII", hdr, 72)
        f.seek(lba * 512)
        table = f.read(count * esize)
        for i in range(count):
            e = table[i * esize: (i + 1) * esize]
            if len(e) < 48 or e[:16] == b"\0" * 16:
                continue
            first, last = struct.unpack_from("<QQ", e, 32)
            parts.append((i + 1, first * 512, (last - first + 1) * 512))
        return parts
    # A superblock at 1024 on an MBR-signed disk can still be a whole-disk filesystem (no table).
    for i, e in enumerate(entries):
        ptype = e[4]
        start, sectors = struct.unpack_from("<II", e, 8)
        if ptype == 0 or sectors == 0:
            continue
        if ptype in (0x05, 0x0F, 0x85):
            parts.extend(logical_partitions(f, start * 512))
            continue
        parts.append((i + 1, start * 512, sectors * 512))
    return parts


def logical_partitions(f, ext_start):
    out, n, ebr = [], 5, ext_start
    for _ in range(128):
        f.seek(ebr)
        b = f.read(512)
        if len(b) < 512 or b[510:512] != b"\x55\xaa":
            break
        e1, e2 = b[446:462], b[462:478]
        start, sectors = struct.unpack_from("<II", e1, 8)
        if sectors:
            out.append((n, ebr + start * 512, sectors * 512))
            n += 1
        nxt = struct.unpack_from("<I", e2, 8)[0]
        if not nxt:
            break
        ebr = ext_start + nxt * 512
    return out


def fs_type_at(f, off):
    f.seek(off + 1024 + 0x38)
    if f.read(2) == b"\x53\xef":
        return "ext"
    f.seek(off)
    head = f.read(4)
    if head == b"XFSB":
        return "xfs"
    f.seek(off + 0x10040)
    if f.read(8) == b"_BHRfS_M":
        return "btrfs"
    f.seek(off + 512)
    if f.read(8) == b"LABELONE":
        return "lvm"
    return None


def find_filesystem(raw):
    """The root filesystem of a disk: the whole disk, or the partition that holds /etc/os-release
    (read straight from the ext directory tree; otherwise the largest Linux filesystem)."""
    size = os.stat(raw).st_size
    with open(raw, "rb") as f:
        cands = []
        kind = fs_type_at(f, 0)
        if kind in ("ext", "xfs", "btrfs"):
            cands.append((None, 0, 0, kind))
        else:
            for n, off, length in partitions(f, size):
                k = fs_type_at(f, off)
                if k:
                    cands.append((n, off, length, k))
    usable = [c for c in cands if c[3] in ("ext", "xfs", "btrfs")]
    if not usable:
        if any(c[3] == "lvm" for c in cands):
            raise Fail("UNAVAILABLE", "The sandbox's root filesystem is on LVM, which Fluid's diff does not read yet.")
        raise Fail("UNAVAILABLE", "No ext2/3/4, XFS or btrfs filesystem was found on the sandbox's disk.")
    chosen = max(usable, key=lambda c: (c[2] or size))
    if len(usable) > 1:
        for c in usable:
            if c[3] == "ext" and Ext.read(raw, c[1]).has_path(raw, "/etc/os-release"):
                chosen = c
                break
    n, off, length, kind = chosen
    ext = Ext.read(raw, off) if kind == "ext" else None
    mount = {"xfs": "xfs", "btrfs": "btrfs"}.get(kind, "ext4")
    others = ["partition %s (%s)" % (c[0], c[3]) for c in usable if c is not chosen]
    return {"type": kind, "partition": n, "offset": off, "size": length, "ext": ext, "mount": mount, "others": others}


class Ext:
    """What the fast path needs from an ext2/3/4 superblock and its group descriptors."""

    @classmethod
    def read(cls, raw, offset):
        with open(raw, "rb") as f:
            f.seek(offset + 1024)
            sb = f.read(1024)
            e = cls()
            (e.inodes_count, blocks_lo) = struct.unpack_from("<II", sb, 0x0)
            e.first_data_block = struct.unpack_from("<I", sb, 0x14)[0]
            e.block_size = 1024 << struct.unpack_from("<I", sb, 0x18)[0]
            e.inodes_per_group = struct.unpack_from("<I", sb, 0x28)[0]
            rev = struct.unpack_from("<I", sb, 0x4C)[0]
            e.inode_size = struct.unpack_from("<H", sb, 0x58)[0] if rev >= 1 else 128
            compat, incompat, ro_compat = struct.unpack_from("<III", sb, 0x5C)
            e.uuid = sb[0x68:0x78].hex()
            e.needs_recovery = bool(incompat & 0x4)
            e.has_journal = bool(compat & 0x4)
            is64 = bool(incompat & 0x80)
            e.meta_bg = bool(incompat & 0x10)
            desc_size = struct.unpack_from("<H", sb, 0xFE)[0] if is64 else 32
            desc_size = desc_size or 32
            blocks_hi = struct.unpack_from("<I", sb, 0x150)[0] if is64 else 0
            e.blocks_count = blocks_lo | (blocks_hi << 32)
            e.mount_type = "ext4"  # the ext4 driver reads ext2 and ext3 too, and honours noload
            groups = (e.inodes_count + e.inodes_per_group - 1) // e.inodes_per_group
            e.itable_blocks = (e.inodes_per_group * e.inode_size + e.block_size - 1) // e.block_size
            e.inode_tables = []
            e.offset = offset
            if e.meta_bg:
                return e  # descriptors are scattered; the fast path is not used (see fast_path_unavailable)
            gdt = (e.first_data_block + 1) * e.block_size
            f.seek(offset + gdt)
            table = f.read(groups * desc_size)
            for g in range(groups):
                d = table[g * desc_size: (g + 1) * desc_size]
                lo = struct.unpack_from("<I", d, 0x8)[0]
                hi = struct.unpack_from("<I", d, 0x28)[0] if desc_size >= 64 else 0
                e.inode_tables.append(lo | (hi << 32))
            return e

    def volatile_mask(self):
        """An inode record without what a mere read changes: the access time (and its extra bits)
        and the checksums that cover it. Two records equal under the mask describe the same file."""
        spans = [(0x08, 0x0C), (0x7C, 0x7E)]
        if self.inode_size > 128:
            spans += [(0x82, 0x84), (0x8C, 0x90)]

        def mask(rec):
            b = bytearray(rec)
            for s, e in spans:
                if e <= len(b):
                    b[s:e] = bytes(e - s)
            return bytes(b)

        return mask

    def read_inode(self, f, ino):
        f.seek(self.record_offset(ino))
        return f.read(self.inode_size)

    def blocks_of(self, f, rec):
        """Data blocks of an inode (extent trees and the classic block map's direct blocks)."""
        flags = struct.unpack_from("<I", rec, 0x20)[0]
        iblock = rec[0x28:0x28 + 60]
        if flags & 0x10000000:  # inline data
            return None
        if flags & 0x80000:  # extents
            return self._extent_blocks(f, iblock)
        return [b for b in struct.unpack_from("<12I", iblock, 0) if b]

    def _extent_blocks(self, f, node):
        magic, entries, _max, depth = struct.unpack_from("<HHHH", node, 0)
        if magic != 0xF30A:
            return []
        out = []
        for i in range(entries):
            e = node[12 + 12 * i: 24 + 12 * i]
            if depth == 0:
                _lblk, length, hi, lo = struct.unpack_from("<IHHI", e, 0)
                if length > 32768:
                    length -= 32768  # uninitialised extent
                start = lo | (hi << 32)
                out.extend(range(start, start + length))
            else:
                _lblk, lo, hi = struct.unpack_from("<IIH", e, 0)
                f.seek(self.offset + (lo | (hi << 32)) * self.block_size)
                out.extend(self._extent_blocks(f, f.read(self.block_size)))
        return out

    def lookup(self, f, dir_ino, name):
        rec = self.read_inode(f, dir_ino)
        blocks = self.blocks_of(f, rec)
        if not blocks:
            return None
        want = name.encode()
        for b in blocks[:64]:
            f.seek(self.offset + b * self.block_size)
            data = f.read(self.block_size)
            pos = 0
            while pos + 8 <= len(data):
                ino, rec_len, name_len = struct.unpack_from("<IHB", data, pos)
                if rec_len < 8:
                    break
                if ino and data[pos + 8: pos + 8 + name_len] == want:
                    return ino
                pos += rec_len
        return None

    def has_path(self, raw, path):
        """Whether an absolute path exists, read from the raw filesystem (no mount)."""
        if self.meta_bg:
            return False
        try:
            with open(raw, "rb") as f:
                ino = 2
                for part in path.strip("/").split("/"):
                    ino = self.lookup(f, ino, part)
                    if not ino:
                        return False
                return True
        except (OSError, struct.error, IndexError):
            return False

    def inodes_in(self, start, end):
        """Inode numbers whose records lie in the filesystem byte range [start, end)."""
        bs, isz = self.block_size, self.inode_size
        out = []
        for g, blk in enumerate(self.inode_tables):
            ts = blk * bs
            te = ts + self.itable_blocks * bs
            if end <= ts or start >= te:
                continue
            lo = max(start, ts) - ts
            hi = min(end, te) - ts
            first = lo // isz
            last = (hi + isz - 1) // isz
            base = g * self.inodes_per_group + 1
            out.append((base + first, base + min(last, self.inodes_per_group)))
        return out

    def record_offset(self, ino):
        g, i = divmod(ino - 1, self.inodes_per_group)
        return self.offset + self.inode_tables[g] * self.block_size + i * self.inode_size


# ---- the fast path: allocation maps -> inode tables -> inodes --------------------------------------


def fast_path_unavailable(a, b, req):
    """Why the fast path cannot be used for these two views (None when it can)."""
    if a.fstype != "ext" or b.fstype != "ext":
        return "an ext2/3/4 filesystem (this one is %s)" % (b.fstype if b.fstype != "ext" else a.fstype)
    if a.ext.meta_bg or b.ext.meta_bg:
        return "a filesystem without meta_bg"
    if a.ext.uuid != b.ext.uuid:
        return "both sides to be the same filesystem (their UUIDs differ)"
    base = req["baseline"]
    for side, v in (("from", a), ("to", b)):
        if depth_of(v.chain, base) is None:
            return "the %s side to stand on the sandbox's baseline layer" % side
    if not req.get("index"):
        return "an index location"
    return None


def written_ranges(view, baseline):
    """Byte ranges of the disk written above the baseline layer, per qemu-img's allocation map."""
    d = depth_of(view.chain, baseline)
    if d == 0:
        return []
    m = json.loads(run(["qemu-img", "map", "-U", "--output=json", view.chain[0]["filename"]]))
    return [(e["start"], e["start"] + e["length"]) for e in m if e.get("depth", 0) < d]


def changed_inodes(a, b, baseline, stats):
    """Inodes whose on-disk records differ between the two views, among those in inode-table
    blocks written above the baseline on either side."""
    ext = b.ext
    ranges = []
    for v in (a, b):
        for s, e in written_ranges(v, baseline):
            s, e = s - v.offset, e - v.offset
            if e > 0:
                ranges.append((max(s, 0), e))
    ranges = merge_ranges(ranges)
    stats["writtenBytes"] = sum(e - s for s, e in ranges)
    cand = []
    for s, e in ranges:
        cand.extend(ext.inodes_in(s, e))
    cand = merge_ranges(cand)
    stats["candidateInodes"] = sum(e - s for s, e in cand)
    changed = set()
    isz = ext.inode_size
    mask = ext.volatile_mask()
    with open(a.raw, "rb") as fa, open(b.raw, "rb") as fb:
        for lo, hi in cand:
            ino = lo
            while ino < hi:
                # read runs of records that are contiguous in one group
                g, i = divmod(ino - 1, ext.inodes_per_group)
                n = min(hi - ino, ext.inodes_per_group - i)
                off_b = b.ext.record_offset(ino)
                off_a = a.ext.record_offset(ino)
                fa.seek(off_a)
                fb.seek(off_b)
                ra, rb = fa.read(n * isz), fb.read(n * isz)
                for k in range(n):
                    x, y = ra[k * isz: (k + 1) * isz], rb[k * isz: (k + 1) * isz]
                    if x != y and mask(x) != mask(y):
                        changed.add(ino + k)
                ino += n
    changed.discard(8)  # the journal
    stats["changedInodes"] = len(changed)
    return changed


def merge_ranges(rs):
    out = []
    for s, e in sorted(rs):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


# ---- the baseline's index: inode -> paths ---------------------------------------------------------


class Index:
    def __init__(self, db):
        self.db = db

    def paths_of(self, inodes):
        out = []
        inos = sorted(inodes)
        for i in range(0, len(inos), 500):
            chunk = inos[i: i + 500]
            q = "SELECT path FROM e WHERE ino IN (%s)" % ",".join("?" * len(chunk))
            out.extend(os.fsdecode(bytes(r[0])) for r in self.db.execute(q, chunk))
        return out


def ensure_index(req, baseline_view, ws, stats):
    """Open the baseline's inode index, building it (once per sandbox) from the baseline view."""
    path = req["index"]
    if os.path.exists(path):
        try:
            db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
            meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
            if meta.get("version") == str(INDEX_VERSION):
                stats["index"] = "reused"
                return Index(db)
            db.close()
        except sqlite3.Error:
            pass
    t0 = time.time()
    with contextlib.ExitStack() as stack:
        base = baseline_view or stack.enter_context(open_view(ws, "baseline", {"image": req["baseline"], "snapshot": None}))
        n = build_index(base, path)
    stats["index"] = "built"
    stats["indexBuildMs"] = ms(t0)
    stats["indexEntries"] = n
    return Index(sqlite3.connect("file:%s?mode=ro" % path, uri=True))


def build_index(base, path):
    """Every entry of the baseline tree as (inode, path), in sqlite beside the sandbox's layers.
    Written to a temporary file and renamed, so a reader never sees half an index."""
    uuid = base.ext.uuid if base.ext else ""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".%d.tmp" % os.getpid()
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    db = sqlite3.connect(tmp)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT)")
    db.execute("CREATE TABLE e (ino INTEGER NOT NULL, path BLOB NOT NULL)")
    n = 0
    rows = []
    root = base.root
    stack_dirs = [b""]
    rootb = os.fsencode(root)
    while stack_dirs:
        rel = stack_dirs.pop()
        try:
            it = os.scandir(rootb + rel if rel else rootb)
        except OSError:
            continue
        with it:
            for e in it:
                p = rel + b"/" + e.name
                rows.append((e.inode(), p))
                if e.is_dir(follow_symlinks=False):
                    stack_dirs.append(p)
        if len(rows) > 20000:
            db.executemany("INSERT INTO e VALUES (?, ?)", rows)
            n += len(rows)
            rows = []
    db.executemany("INSERT INTO e VALUES (?, ?)", rows)
    n += len(rows)
    db.execute("CREATE INDEX e_ino ON e(ino)")
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("version", str(INDEX_VERSION)), ("uuid", uuid), ("entries", str(n))])
    db.commit()
    db.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return n


class DescendHint:
    """Where the fast walk must look: ancestors of the baseline paths of changed inodes, and any
    directory or entry whose inode changed."""

    def __init__(self, paths, changed):
        self.changed = changed
        self.targets = set(paths)
        self.count = len(self.targets)
        self.ancestors = {"/"}
        for p in self.targets:
            parts = p.split("/")
            for i in range(2, len(parts)):
                self.ancestors.add("/".join(parts[:i]))


# ---- reading inside a guest's tree ---------------------------------------------------------------
#
# Everything below a view's mountpoint is the guest's, and the guest is not trusted: a symlink such
# as /etc/passwd -> /etc/shadow must resolve inside the guest's tree (as a chroot would), never
# against the host's root, and only regular files are ever opened (no FIFOs, no device nodes: the
# views are also mounted nodev). Paths the walk produces come from listings of real directories;
# the collectors' fixed paths go through these helpers.


def resolve_in(root, path, follow_last=True):
    """The host path of `path` inside the tree at `root`, symlinks resolved as a chroot at `root`
    would resolve them (absolute targets restart at `root`, '..' stops there); None when it does not
    resolve (missing, or more than 40 links)."""
    parts = [p for p in path.split("/") if p and p != "."]
    cur, hops = [], 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if cur:
                cur.pop()
            continue
        cand = root + "/" + "/".join(cur + [p])
        try:
            st = os.lstat(cand)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode) and (parts or follow_last):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(cand)
            if target.startswith("/"):
                cur = []
            parts = [x for x in target.split("/") if x and x != "."] + parts
            continue
        cur.append(p)
    return root + ("/" + "/".join(cur) if cur else "")


def tree_stat(root, path, follow_last=True):
    real = resolve_in(root, path, follow_last)
    if real is None:
        return None, None
    try:
        return real, os.lstat(real)
    except OSError:
        return None, None


def tree_read(root, path, limit=None, follow_last=True):
    """The bytes of a regular file inside the tree (None for anything else)."""
    real, st = tree_stat(root, path, follow_last)
    if st is None or not stat.S_ISREG(st.st_mode):
        return None
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read(limit if limit is not None else -1)


def tree_text(root, path, limit=16 * 1024 * 1024):
    data = tree_read(root, path, limit)
    return None if data is None else data.decode("utf-8", "replace")


def tree_digest(root, path, algo="sha256", follow_last=False):
    real, st = tree_stat(root, path, follow_last)
    if st is None or not stat.S_ISREG(st.st_mode):
        return None
    return file_digest(real, algo)


def tree_isdir(root, path):
    st = tree_stat(root, path)[1]
    return st is not None and stat.S_ISDIR(st.st_mode)


def tree_exists(root, path, follow_last=True):
    return tree_stat(root, path, follow_last)[1] is not None


def tree_listdir(root, path):
    real, st = tree_stat(root, path)
    if st is None or not stat.S_ISDIR(st.st_mode):
        return []
    try:
        return os.listdir(real)
    except OSError:
        return []


# ---- comparing two trees --------------------------------------------------------------------------

FTYPES = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "char", stat.S_IFBLK: "block"}


def meta_of(root, rel):
    """lstat facts of root+rel, or None when it does not exist."""
    try:
        st = os.lstat(root + rel)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    m = {
        "type": FTYPES.get(stat.S_IFMT(st.st_mode), "other"),
        "perm": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "size": st.st_size,
        "ino": st.st_ino,
        "mtime": st.st_mtime_ns,
        "ctime": st.st_ctime_ns,
        "rdev": st.st_rdev,
        "target": os.readlink(root + rel) if stat.S_ISLNK(st.st_mode) else None,
    }
    return m


def aspects(a, b, ra, rb, rel):
    """What differs between two lstat facts of one path (content compared by hash when needed)."""
    out = []
    if a["type"] != b["type"]:
        return ["type"]
    if a["perm"] != b["perm"]:
        out.append("mode")
    if a["uid"] != b["uid"] or a["gid"] != b["gid"]:
        out.append("owner")
    if a["type"] == "symlink":
        if a["target"] != b["target"]:
            out.append("target")
    elif a["type"] == "file":
        same_inode = a["ino"] == b["ino"] and a["mtime"] == b["mtime"] and a["ctime"] == b["ctime"]
        if a["size"] != b["size"]:
            out.append("content")
        elif not same_inode and tree_digest(ra, rel) != tree_digest(rb, rel):
            out.append("content")
    elif a["type"] in ("char", "block") and a["rdev"] != b["rdev"]:
        out.append("content")
    return out


def file_digest(path, algo="sha256"):
    h = hashlib.new(algo)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        with os.fdopen(fd, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def listing(root, rel):
    """name -> (inode, is_dir) of a directory; None when it is not one."""
    try:
        it = os.scandir(root + rel if rel else root)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    out = {}
    with it:
        for e in it:
            try:
                out[e.name] = (e.inode(), e.is_dir(follow_symlinks=False))
            except OSError:
                out[e.name] = (e.inode(), False)
    return out


def walk_compare(ra, rb, hint, stats):
    """Changed paths between two trees: [(path, before-meta|None, after-meta|None, aspects)].

    hint None compares every entry (the full walk); with a DescendHint only what the hint points at,
    plus everything below directories that appear, disappear or are replaced."""
    changes = []
    compared = [0]
    listed = [0]

    def record(rel, a, b):
        compared[0] += 1
        if a is None and b is None:
            return
        if a is None or b is None:
            changes.append((rel, a, b, ["added"] if a is None else ["deleted"]))
            return
        asp = aspects(a, b, ra, rb, rel)
        if asp:
            changes.append((rel, a, b, asp))

    def subtree(root, rel, side):
        """Everything below a directory that exists on one side only."""
        la = listing(root, rel)
        listed[0] += 1
        for name in sorted(la or {}):
            child = rel + "/" + name
            m = meta_of(root, child)
            if m is None:
                continue
            compared[0] += 1
            changes.append((child, None, m, ["added"]) if side == "b" else (child, m, None, ["deleted"]))
            if m["type"] == "dir":
                subtree(root, child, side)

    def walk(rel):
        la, lb = listing(ra, rel), listing(rb, rel)
        listed[0] += 1
        if la is None or lb is None:
            return
        for name in sorted(set(la) | set(lb)):
            child = rel + "/" + name
            ea, eb = la.get(name), lb.get(name)
            if ea is None or eb is None:
                m = meta_of(rb, child) if ea is None else meta_of(ra, child)
                if m is None:
                    continue
                record(child, None if ea is None else m, m if ea is None else None)
                if m["type"] == "dir":
                    subtree(rb if ea is None else ra, child, "b" if ea is None else "a")
                continue
            (ia, da), (ib, db) = ea, eb
            if hint is None:
                interesting = True
            else:
                interesting = ia != ib or ia in hint.changed or ib in hint.changed or child in hint.targets
            if interesting:
                ma, mb = meta_of(ra, child), meta_of(rb, child)
                if ma and mb and ma["type"] == "dir" and mb["type"] == "dir":
                    asp = [x for x in aspects(ma, mb, ra, rb, child) if x != "content"]
                    compared[0] += 1
                    if asp:
                        changes.append((child, ma, mb, asp))
                else:
                    record(child, ma, mb)
                    if ma and mb and ma["type"] != mb["type"]:
                        if ma["type"] == "dir":
                            subtree(ra, child, "a")
                        if mb["type"] == "dir":
                            subtree(rb, child, "b")
            if da and db:
                if hint is None or ia != ib or ia in hint.changed or ib in hint.changed or child in hint.ancestors:
                    walk(child)

    # The roots themselves (mode/owner of /)
    ma, mb = meta_of(ra, ""), meta_of(rb, "")
    if ma and mb:
        asp = [x for x in aspects(ma, mb, ra, rb, "") if x != "content"]
        if asp:
            changes.append(("/", ma, mb, asp))
    walk("")
    stats["pathsCompared"] = compared[0]
    stats["dirsListed"] = listed[0]
    changes.sort(key=lambda c: c[0].encode("utf-8", "surrogateescape"))
    return changes


# ---- noise rules ----------------------------------------------------------------------------------


def glob_regex(pattern):
    """A path glob as a regex: * within a segment, ** across segments, ? one character;
    '/dir/**' also matches /dir itself."""
    if pattern.endswith("/**"):
        return re.compile("^" + glob_body(pattern[:-3]) + "(/.*)?$", re.S)
    return re.compile("^" + glob_body(pattern) + "$", re.S)


def glob_body(p):
    out, i = [], 0
    while i < len(p):
        c = p[i]
        if p.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if p.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class Rules:
    def __init__(self, data):
        self.rules = []
        for r in data["rules"]:
            pats = [glob_regex(p) for p in r.get("paths", [])]
            self.rules.append({"id": r["id"], "reason": r["reason"], "paths": pats, "check": r.get("check")})
        self.sensitive = [glob_regex(p) for p in data.get("sensitive", [])]

    def is_sensitive(self, path):
        return any(p.match(path) for p in self.sensitive)


# ---- classification: collectors, noise, file items ------------------------------------------------


def classify(ra, rb, raw, rules, limits, warnings):
    """Turn changed paths into typed items and noise entries."""
    ctx = Context(ra, rb, raw, rules, limits, warnings)
    items = []
    for collect in (collect_packages, collect_accounts, collect_sysctl, collect_modules):
        items.extend(collect(ctx))
    checks = {
        "package-file": ctx.packages.is_packaged_file,
        "package-enabled": ctx.is_package_enabled_link,
        "package-scripts": ctx.packages.is_from_package_scripts,
        "alternatives-auto": ctx.is_auto_alternative,
        "skel-copy": ctx.is_skel_copy,
    }
    # Deepest paths first: whether a new directory is noise depends on what became of its contents.
    for path, a, b, asp in reversed(raw):
        if path in ctx.claimed:
            continue
        rule = None
        for r in rules.rules:
            if r["check"]:
                fn = checks.get(r["check"])
                if fn and fn(path, a, b):
                    rule = r
                    break
            elif any(p.match(path) for p in r["paths"]):
                rule = r
                break
        if rule:
            ctx.noise(path, rule["id"])
            continue
        # a directory whose only change is that entries came and went is not a change of its own
        if a and b and a["type"] == "dir" and b["type"] == "dir" and not asp:
            continue
        ctx.item_paths.add(path)
        item = file_item(ctx, path, a, b, asp)
        for special in (as_unit, as_sudoers, as_cron):
            typed = special(ctx, path, item)
            if typed is not None:
                items.extend(typed)
                break
        else:
            items.append(item)
    return {"items": items, "noise": ctx.noise_list}


class Context:
    def __init__(self, ra, rb, raw, rules, limits, warnings):
        self.ra, self.rb = ra, rb
        self.raw = raw
        self.by_path = {c[0]: c for c in raw}
        self.rules = rules
        self.text_limit = int(limits.get("textBytes", 256 * 1024))
        self.diff_lines = int(limits.get("diffLines", 3000))
        self.warnings = warnings
        self.claimed = set()
        self.noise_list = []
        self.names_a = AccountNames(ra)
        self.names_b = AccountNames(rb)
        self.packages = Packages(self)
        self.new_users = set()
        self.item_paths = set()  # paths reported as items so far (classify goes deepest first)

    def noise(self, path, rule):
        self.noise_list.append([path, rule])

    def claim(self, path, rule):
        if path in self.by_path and path not in self.claimed:
            self.claimed.add(path)
            self.noise(path, rule)

    def changed(self, path):
        return path in self.by_path

    def read(self, side, path, limit=None):
        return tree_read(self.ra if side == "a" else self.rb, path, limit)

    def text(self, side, path):
        data = self.read(side, path, 16 * 1024 * 1024)
        if data is None:
            return None
        return data.decode("utf-8", "replace")

    # named noise checks ----------------------------------------------------------------------------

    def is_package_enabled_link(self, path, a, b):
        """A *.wants link of a unit its (newly installed) package enabled through deb-systemd-helper."""
        m = re.match(r"^/etc/systemd/system/[^/]+\.(wants|requires)/([^/]+)$", path)
        if not m or not b or b["type"] != "symlink" or a is not None:
            return False
        unit = m.group(2)
        if not tree_exists(self.rb, "/var/lib/systemd/deb-systemd-helper-enabled/" + path[len("/etc/systemd/system/"):], follow_last=False):
            return False
        owner = self.packages.owner_b(unit_file_of(self.rb, unit))
        return owner is not None and owner in self.packages.installed_names

    def is_auto_alternative(self, path, a, b):
        m = re.match(r"^/etc/alternatives/([^/]+)$", path)
        if not m:
            return False
        state = self.read("b", "/var/lib/dpkg/alternatives/" + m.group(1), 64)
        if state is None:
            return a is not None and b is None  # the alternative went away with its package
        return state.split(b"\n", 1)[0].strip() == b"auto"

    def is_skel_copy(self, path, a, b):
        if a is not None or b is None:
            return False
        for user, home in self.new_users:
            if path == home:
                return b["type"] == "dir" and self.names_b.user(b["uid"]) == user
            if path.startswith(home + "/"):
                rel = path[len(home):]
                if b["type"] == "dir":
                    return tree_isdir(self.rb, "/etc/skel" + rel)
                if b["type"] == "file":
                    skel = tree_digest(self.rb, "/etc/skel" + rel, follow_last=True)
                    return skel is not None and skel == tree_digest(self.rb, path)
        return False


def unit_file_of(root, unit):
    for d in ("/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/"):
        p = d + unit
        real, st = tree_stat(root, p, follow_last=False)
        if st is not None:
            if stat.S_ISLNK(st.st_mode) and d == "/etc/systemd/system/":
                continue
            return p
    base = re.sub(r"@[^.]*\.", "@.", unit)
    if base != unit:
        return unit_file_of(root, base)
    return "/lib/systemd/system/" + unit


# ---- file items -----------------------------------------------------------------------------------


def public_meta(m, names, sha=None):
    if m is None:
        return None
    return {
        "type": m["type"] if m["type"] != "other" else "file",
        "mode": "%04o" % m["perm"],
        "uid": m["uid"],
        "gid": m["gid"],
        "user": names.user(m["uid"]),
        "group": names.group(m["gid"]),
        "size": m["size"] if m["type"] == "file" else 0,
        "sha256": sha,
        "target": m["target"],
    }


def file_item(ctx, path, a, b, asp):
    change = "added" if a is None else "deleted" if b is None else "modified"
    sha_a = tree_digest(ctx.ra, path) if a and a["type"] == "file" else None
    sha_b = tree_digest(ctx.rb, path) if b and b["type"] == "file" else None
    aspects_out = [] if change != "modified" else [x for x in asp if x in ("content", "mode", "owner", "target", "type")]
    content = None
    sensitive = ctx.rules.is_sensitive(path)
    if (a and a["type"] == "file") or (b and b["type"] == "file"):
        if change != "modified" or "content" in aspects_out or "type" in aspects_out:
            content = content_of(ctx, path, a, b, sensitive)
    owner = ctx.packages.owner_b(path) if b else ctx.packages.owner_a(path)
    return {
        "kind": "file",
        "key": path,
        "path": path,
        "change": change,
        "aspects": aspects_out,
        "before": public_meta(a, ctx.names_a, sha_a),
        "after": public_meta(b, ctx.names_b, sha_b),
        "content": content,
        "package": owner,
        "sensitive": sensitive,
    }


def is_binary(data):
    if b"\0" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError as e:
        # a multi-byte sequence cut at the read limit is still text
        return e.start < len(data) - 4


def content_of(ctx, path, a, b, sensitive):
    size_a = a["size"] if a and a["type"] == "file" else 0
    size_b = b["size"] if b and b["type"] == "file" else 0
    if sensitive:
        return {"kind": "hidden", "reason": "a sensitive file: compared by size and hash only", "sizeBefore": size_a, "sizeAfter": size_b}
    lim = ctx.text_limit
    da = ctx.read("a", path, lim + 1) if a and a["type"] == "file" else b""
    db = ctx.read("b", path, lim + 1) if b and b["type"] == "file" else b""
    da, db = da or b"", db or b""
    if is_binary(da) or is_binary(db):
        return {"kind": "binary", "sizeBefore": size_a, "sizeAfter": size_b}
    truncated = len(da) > lim or len(db) > lim
    ta = da[:lim].decode("utf-8", "replace").splitlines(True)
    tb = db[:lim].decode("utf-8", "replace").splitlines(True)
    lines = list(difflib.unified_diff(ta, tb, "a" + path, "b" + path, n=3))
    added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
    removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
    if len(lines) > ctx.diff_lines:
        lines = lines[: ctx.diff_lines]
        truncated = True
    text = "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)
    return {"kind": "text", "diff": text, "added": added, "removed": removed, "truncated": truncated}


# ---- packages -------------------------------------------------------------------------------------


def parse_dpkg_status(text):
    """{(name, arch): {version, status, conffiles: {path: md5}}} for installed packages."""
    out = {}
    for para in re.split(r"\n\s*\n", text or ""):
        fields, last = {}, None
        for line in para.split("\n"):
            if not line:
                continue
            if line[0] in " \t" and last:
                fields[last] += "\n" + line
                continue
            k, _, v = line.partition(":")
            last = k
            fields[k] = v.strip()
        name = fields.get("Package")
        if not name:
            continue
        status = fields.get("Status", "")
        if not status.endswith(" installed") and not status.endswith("half-configured") and "unpacked" not in status:
            continue
        conff = {}
        for cl in fields.get("Conffiles", "").split("\n"):
            parts = cl.split()
            if len(parts) >= 2 and parts[0].startswith("/"):
                conff[parts[0]] = parts[1]
        arch = fields.get("Architecture", "")
        out[(name, arch)] = {"version": fields.get("Version", ""), "status": status.split()[-1], "conffiles": conff}
    return out


def debian_version_cmp(a, b):
    """dpkg's version ordering (epoch:upstream-revision)."""

    def split(v):
        epoch, _, rest = v.partition(":") if ":" in v else ("0", "", v)
        up, _, rev = rest.rpartition("-") if "-" in rest else (rest, "", "0")
        return int(epoch or 0), up, rev

    def order(c):
        if c == "~":
            return -1
        if c.isdigit():
            return 0
        if c.isalpha():
            return ord(c)
        return ord(c) + 256

    def cmp_part(x, y):
        while x or y:
            nx = re.match(r"^[^0-9]*", x).group(0)
            ny = re.match(r"^[^0-9]*", y).group(0)
            for i in range(max(len(nx), len(ny))):
                ox = order(nx[i]) if i < len(nx) else 0
                oy = order(ny[i]) if i < len(ny) else 0
                if ox != oy:
                    return -1 if ox < oy else 1
            x, y = x[len(nx):], y[len(ny):]
            dx = re.match(r"^[0-9]*", x).group(0)
            dy = re.match(r"^[0-9]*", y).group(0)
            ix, iy = int(dx or 0), int(dy or 0)
            if ix != iy:
                return -1 if ix < iy else 1
            x, y = x[len(dx):], y[len(dy):]
        return 0

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return cmp_part(ua, ub) or cmp_part(ra, rb)


class Packages:
    """Package facts of both trees, read lazily: what changed, who owns a path, packaged checksums."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.before, self.after = {}, {}
        self.installed_names = set()
        self.changed_names = set()
        self._owners = {"a": None, "b": None}

    def load(self):
        ctx = self.ctx
        self.before = parse_dpkg_status(ctx.text("a", "/var/lib/dpkg/status") or "")
        self.after = parse_dpkg_status(ctx.text("b", "/var/lib/dpkg/status") or "")

    def owners(self, side):
        """path -> (package, md5 or None) for the packages that changed (both sides), plus every
        package's conffiles. Other packages' files are looked up on demand (owner_*)."""
        if self._owners[side] is None:
            root = self.ctx.ra if side == "a" else self.ctx.rb
            pkgs = self.before if side == "a" else self.after
            own = {}
            for (name, arch), p in pkgs.items():
                for cf, md5 in p["conffiles"].items():
                    own[cf] = (name, md5 if md5 not in ("newconffile", "obsolete") else None)
            for (name, arch) in pkgs:
                if name in self.changed_names:
                    own.update(read_package_files(root, name, arch))
            self._owners[side] = own
        return self._owners[side]

    def _lookup(self, side, path):
        own = self.owners(side)
        for p in self.aliases(side, path):
            if p in own:
                return own[p]
        return self._lookup_full(side, path)

    def aliases(self, side, path):
        """A path and the names dpkg may know it by on a merged-/usr system (/bin -> usr/bin)."""
        out = [path]
        root = self.ctx.ra if side == "a" else self.ctx.rb
        m = re.match(r"^/usr/(bin|sbin|lib|lib32|lib64|libx32)(/.*)$", path)
        if m and os.path.islink(root + "/" + m.group(1)):
            out.append("/" + m.group(1) + m.group(2))
        return out

    def _lookup_full(self, side, path):
        # An unchanged package's file under the system directories: scan the md5sums on demand.
        if not re.match(r"^/(usr|bin|sbin|lib|lib32|lib64|libx32|opt)/", path) or path.startswith("/usr/local/"):
            return None
        full = self._full(side)
        for p in self.aliases(side, path):
            if p in full:
                return full[p]
        return None

    def _full(self, side):
        key = "full_" + side
        if not hasattr(self, key):
            root = self.ctx.ra if side == "a" else self.ctx.rb
            pkgs = self.before if side == "a" else self.after
            full = {}
            for (name, arch) in pkgs:
                full.update(read_package_files(root, name, arch, md5_only=True))
            setattr(self, key, full)
        return getattr(self, key)

    def owner_a(self, path):
        o = self._lookup("a", path)
        return o[0] if o else None

    def owner_b(self, path):
        o = self._lookup("b", path)
        return o[0] if o else None

    def windows(self):
        """When each package changed in this diff was being installed: {name: [(start_ns, end_ns)]},
        from dpkg's log (local time, read with the guest's own time zone)."""
        if hasattr(self, "_windows"):
            return self._windows
        self._windows = {}
        text = tree_text(self.ctx.rb, "/var/log/dpkg.log", 32 * 1024 * 1024) or ""
        tz = guest_timezone(self.ctx.rb)
        spans = {}
        for line in text.split("\n"):
            m = re.match(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (install|upgrade|configure|trigproc|remove|purge|status \S+) ([^: ]+)(?::\S+)? ", line)
            if not m or m.group(3) not in self.changed_names:
                continue
            try:
                t = int(datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz).timestamp())
            except ValueError:
                continue
            action, ws = m.group(2), spans.setdefault(m.group(3), [])
            # A window opens when dpkg starts on the package (or configures or triggers it after an
            # earlier run closed) and closes when the package is "status installed".
            if action in ("install", "upgrade", "configure", "trigproc", "remove", "purge"):
                if action in ("install", "upgrade") or not ws or ws[-1][1] is not None:
                    ws.append([t, None])
            elif action == "status installed" and ws and ws[-1][1] is None:
                ws[-1][1] = t
        for name, ws in spans.items():
            self._windows[name] = [(s * 10**9, (e + 1) * 10**9) for s, e in ws if e is not None]
        return self._windows

    def shipped_md5s(self, name):
        key = "_md5s_" + name
        if not hasattr(self, key):
            md5s = set()
            for (n, arch), p in self.after.items():
                if n == name:
                    md5s.update(v[1] for v in read_package_files(self.ctx.rb, n, arch, md5_only=True).values() if v[1])
                    md5s.update(v for v in p["conffiles"].values())
            setattr(self, key, md5s)
        return getattr(self, key)

    def is_from_package_scripts(self, path, a, b):
        """Made by the maintainer scripts of a package this diff installs or upgrades, while it was
        being installed: a new file with the content of a file the package ships, a link to a path
        the package owns, or a new directory holding nothing else. Installing the package again does
        the same."""
        if a is not None or b is None:
            return False
        for name, ws in self.windows().items():
            if not any(s <= b["ctime"] < e for s, e in ws):
                continue
            if b["type"] == "file":
                if tree_digest(self.ctx.rb, path, "md5") in self.shipped_md5s(name):
                    return True
            elif b["type"] == "symlink":
                target = b["target"] or ""
                full = os.path.normpath(target if target.startswith("/") else os.path.join(os.path.dirname(path), target))
                o = self._lookup("b", full)
                if o and o[0] == name:
                    return True
            elif b["type"] == "dir":
                if not any(p.startswith(path + "/") for p in self.ctx.item_paths):
                    return True
        return False

    def is_packaged_file(self, path, a, b):
        """Added or modified by a package install/upgrade and identical to the packaged file, or
        deleted together with its package."""
        if b is None:
            o = self._lookup("a", path)
            if not o:
                return False
            name = o[0]
            return name in self.changed_names and not any(p in self.owners("b") for p in self.aliases("b", path))
        if a is not None and (a["type"], a["perm"], a["uid"], a["gid"]) != (b["type"], b["perm"], b["uid"], b["gid"]):
            return False  # a packaged file whose mode or owner someone changed: a change of its own
        o = self._lookup("b", path)
        if not o:
            return False
        name, md5 = o
        if b["type"] != "file":
            return name in self.changed_names  # directories and links a changed package ships
        if md5 is None:
            return False
        return tree_digest(self.ctx.rb, path, "md5") == md5


def guest_timezone(root):
    """The guest's own time zone (its /etc/localtime), UTC when it has none."""
    data = tree_read(root, "/etc/localtime", 1 << 20)
    if data:
        try:
            import zoneinfo

            return zoneinfo.ZoneInfo.from_file(io.BytesIO(data))
        except Exception:
            pass
    return datetime.timezone.utc


def read_package_files(root, name, arch, md5_only=False):
    """path -> (package, md5 or None) from dpkg's .list and .md5sums of one package."""
    out = {}
    info = "/var/lib/dpkg/info/"
    md5s = lst = None
    for stem in (name + ":" + arch, name):
        md5s = tree_read(root, info + stem + ".md5sums")
        lst = None if md5_only else tree_read(root, info + stem + ".list")
        if md5s is not None or lst is not None:
            break
    for line in (md5s or b"").split(b"\n"):
        parts = line.split(b"  ", 1)
        if len(parts) == 2:
            out["/" + os.fsdecode(parts[1]).lstrip("/")] = (name, os.fsdecode(parts[0]).strip())
    for line in (lst or b"").split(b"\n"):
        p = os.fsdecode(line)
        if p and p != "/." and p not in out:
            out[p] = (name, None)
    return out


def rpm_packages(root):
    """{(name, arch): version} from rpm's sqlite database (RHEL 9, Fedora); None without one."""
    db, st = tree_stat(root, "/var/lib/rpm/rpmdb.sqlite")
    if st is None or not stat.S_ISREG(st.st_mode):
        return None
    out = {}
    con = sqlite3.connect("file:%s?mode=ro&immutable=1" % db, uri=True)
    try:
        for (blob,) in con.execute("SELECT blob FROM Packages"):
            h = rpm_header(bytes(blob))
            name = h.get(1000)
            if not name or name == "gpg-pubkey":
                continue
            ver = h.get(1001, "")
            rel = h.get(1002, "")
            epoch = h.get(1003)
            v = ("%s:" % epoch if epoch not in (None, 0, "0") else "") + ver + ("-" + rel if rel else "")
            out[(name, h.get(1022, ""))] = v
    finally:
        con.close()
    return out


def rpm_header(blob):
    """Tags NAME, VERSION, RELEASE, EPOCH, ARCH of an rpm header blob."""
    il, dl = struct.unpack_from(">II", blob, 0)
    data = 8 + il * 16
    out = {}
    for i in range(il):
        tag, typ, off, cnt = struct.unpack_from(">IIII", blob, 8 + i * 16)
        if tag not in (1000, 1001, 1002, 1003, 1022):
            continue
        if typ == 6:  # STRING
            end = blob.index(b"\0", data + off)
            out[tag] = blob[data + off: end].decode("utf-8", "replace")
        elif typ == 4:  # INT32
            out[tag] = struct.unpack_from(">I", blob, data + off)[0]
    return out


def collect_packages(ctx):
    p = ctx.packages
    p.load()
    items = []
    keys = set(p.before) | set(p.after)
    for key in keys:
        a, b = p.before.get(key), p.after.get(key)
        va, vb = a and a["version"], b and b["version"]
        if va == vb:
            continue
        name, arch = key
        if a is None:
            change = "installed"
            p.installed_names.add(name)
        elif b is None:
            change = "removed"
        else:
            change = "upgraded" if debian_version_cmp(vb, va) > 0 else "downgraded"
        p.changed_names.add(name)
        items.append(
            {"kind": "package", "key": "dpkg:%s:%s" % (name, arch), "manager": "dpkg", "name": name, "arch": arch, "change": change, "before": {"version": va} if va else None, "after": {"version": vb} if vb else None}
        )
    ra, rb = rpm_packages(ctx.ra), rpm_packages(ctx.rb)
    if ra is not None or rb is not None:
        ra, rb = ra or {}, rb or {}
        for key in set(ra) | set(rb):
            va, vb = ra.get(key), rb.get(key)
            if va == vb:
                continue
            name, arch = key
            change = "installed" if va is None else "removed" if vb is None else "upgraded"
            p.changed_names.add(name)
            if va is None:
                p.installed_names.add(name)
            items.append({"kind": "package", "key": "rpm:%s:%s" % (name, arch), "manager": "rpm", "name": name, "arch": arch, "change": change, "before": {"version": va} if va else None, "after": {"version": vb} if vb else None})
    elif tree_exists(ctx.rb, "/var/lib/rpm/Packages"):
        ctx.warnings.append("This system's rpm database is Berkeley DB, which the diff does not read; rpm packages are shown as files.")
    return items


# ---- users, groups, shadow ------------------------------------------------------------------------


class AccountNames:
    def __init__(self, root):
        self.root = root
        self._users = None
        self._groups = None

    def _load(self):
        self._users, self._groups = {}, {}
        for path, target in (("/etc/passwd", self._users), ("/etc/group", self._groups)):
            for line in (tree_text(self.root, path) or "").split("\n"):
                parts = line.split(":")
                if len(parts) >= 3 and parts[2].isdigit():
                    target.setdefault(int(parts[2]), parts[0])

    def user(self, uid):
        if self._users is None:
            self._load()
        return self._users.get(uid)

    def group(self, gid):
        if self._groups is None:
            self._load()
        return self._groups.get(gid)


def colon_file(text, n):
    out = {}
    for line in (text or "").split("\n"):
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < n:
            parts += [""] * (n - len(parts))
        out.setdefault(parts[0], parts)
    return out


def password_state(field):
    """What a shadow password field says, never the hash itself."""
    if field is None:
        return None
    if field == "":
        return "empty"
    if field in ("*", "!*", "!!") or field.startswith("*"):
        return "disabled"
    if field.startswith("!"):
        return "locked" if len(field) > 1 else "disabled"
    return "set"


def collect_accounts(ctx):
    """Users and groups from passwd/group/shadow/gshadow (and subuid/subgid), as typed changes."""
    files = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid"]
    if not any(ctx.changed(f) for f in files):
        return []
    for f in files:
        ctx.claim(f, "summarized")
    pa, pb = colon_file(ctx.text("a", "/etc/passwd"), 7), colon_file(ctx.text("b", "/etc/passwd"), 7)
    ga, gb = colon_file(ctx.text("a", "/etc/group"), 4), colon_file(ctx.text("b", "/etc/group"), 4)
    sa, sb = colon_file(ctx.text("a", "/etc/shadow"), 9), colon_file(ctx.text("b", "/etc/shadow"), 9)
    gsa, gsb = colon_file(ctx.text("a", "/etc/gshadow"), 4), colon_file(ctx.text("b", "/etc/gshadow"), 4)
    items = []

    def groups_of(user, groups, passwd):
        primary = passwd.get(user, [None] * 4)[3]
        out = []
        for name, g in groups.items():
            if user in [m for m in g[3].split(",") if m] and g[2] != primary:
                out.append(name)
        return sorted(out)

    def group_name(gid, groups):
        for name, g in groups.items():
            if g[2] == gid:
                return name
        return None

    def user_info(name, passwd, shadow, groups):
        p = passwd.get(name)
        if p is None:
            return None
        s = shadow.get(name)
        return {
            "uid": int(p[2]) if p[2].isdigit() else -1,
            "gid": int(p[3]) if p[3].isdigit() else -1,
            "group": group_name(p[3], groups),
            "gecos": p[4],
            "home": p[5],
            "shell": p[6],
            "groups": groups_of(name, groups, passwd),
            "password": password_state(s[1]) if s else None,
            # lastchg (s[2]) changes by itself whenever a password does: left out.
            "minDays": s[3] if s else "",
            "maxDays": s[4] if s else "",
            "warnDays": s[5] if s else "",
            "inactiveDays": s[6] if s else "",
            "expires": s[7] if s else "",
        }

    for name in sorted(set(pa) | set(pb)):
        ia, ib = user_info(name, pa, sa, ga), user_info(name, pb, sb, gb)
        hash_changed = (sa.get(name, [None, None])[1] != sb.get(name, [None, None])[1]) and ia is not None and ib is not None
        if ia == ib and not hash_changed:
            continue
        fields = sorted(k for k in set(ia or {}) | set(ib or {}) if (ia or {}).get(k) != (ib or {}).get(k))
        if hash_changed and "password" not in fields:
            fields.append("password")
        change = "added" if ia is None else "removed" if ib is None else "modified"
        if change == "added":
            ctx.new_users.add((name, ib["home"]))
        items.append({"kind": "user", "key": name, "name": name, "change": change, "fields": fields if change == "modified" else [], "before": ia, "after": ib, "passwordChanged": bool(hash_changed or (change == "added" and ib and ib["password"] == "set"))})

    def group_info(name, groups, gshadow):
        g = groups.get(name)
        if g is None:
            return None
        gs = gshadow.get(name)
        return {"gid": int(g[2]) if g[2].isdigit() else -1, "members": sorted(m for m in g[3].split(",") if m), "password": password_state(gs[1]) if gs else None}

    for name in sorted(set(ga) | set(gb)):
        ia, ib = group_info(name, ga, gsa), group_info(name, gb, gsb)
        if ia == ib:
            continue
        change = "added" if ia is None else "removed" if ib is None else "modified"
        fields = sorted(k for k in set(ia or {}) | set(ib or {}) if (ia or {}).get(k) != (ib or {}).get(k)) if change == "modified" else []
        items.append({"kind": "group", "key": name, "name": name, "change": change, "fields": fields, "before": ia, "after": ib})
    return items


# ---- sysctl and kernel modules --------------------------------------------------------------------

SYSCTL_DIRS = ("/etc/sysctl.d/", "/run/sysctl.d/", "/usr/local/lib/sysctl.d/", "/usr/lib/sysctl.d/", "/lib/sysctl.d/")


def sysctl_settings(root):
    """key -> (value, file), merged as systemd-sysctl does (by file name; /etc wins; sysctl.conf last)."""
    files = {}
    for d in reversed(SYSCTL_DIRS):
        for name in tree_listdir(root, d):
            if name.endswith(".conf"):
                files[name] = d + name
    order = [files[n] for n in sorted(files)]
    if tree_exists(root, "/etc/sysctl.conf"):
        order.append("/etc/sysctl.conf")
    out = {}
    for path in order:
        for line in (tree_text(root, path) or "").split("\n"):
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("-"):
                line = line[1:]
            k, sep, v = line.partition("=")
            if not sep:
                continue
            out[k.strip().replace("/", ".")] = (v.strip(), path)
    return out


def collect_sysctl(ctx):
    paths = [c[0] for c in ctx.raw if c[0] == "/etc/sysctl.conf" or any(c[0].startswith(d) and c[0].endswith(".conf") for d in SYSCTL_DIRS)]
    if not paths:
        return []
    a, b = sysctl_settings(ctx.ra), sysctl_settings(ctx.rb)
    items = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if (va and va[0]) == (vb and vb[0]):
            continue
        items.append({"kind": "sysctl", "key": k, "name": k, "before": va[0] if va else None, "after": vb[0] if vb else None, "file": (vb or va)[1]})
    for p in paths:
        if not ctx.packages.is_packaged_file(p, *ctx.by_path[p][1:3]):
            ctx.claim(p, "summarized")
    return items


def module_settings(root):
    out = {}
    files = ["/etc/modules"]
    for d in ("/etc/modules-load.d/", "/usr/lib/modules-load.d/", "/lib/modules-load.d/"):
        files += [d + n for n in sorted(tree_listdir(root, d)) if n.endswith(".conf")]
    for path in files:
        for line in (tree_text(root, path) or "").split("\n"):
            line = line.strip()
            if line and line[0] not in "#;":
                out.setdefault(line.split()[0], path)
    return out


def collect_modules(ctx):
    paths = [c[0] for c in ctx.raw if c[0] == "/etc/modules" or re.match(r"^(/usr)?(/etc|/lib)/modules-load\.d/[^/]+\.conf$", c[0])]
    if not paths:
        return []
    a, b = module_settings(ctx.ra), module_settings(ctx.rb)
    items = []
    for m in sorted(set(a) ^ set(b)):
        items.append({"kind": "kernel-module", "key": m, "name": m, "change": "added" if m in b else "removed", "file": b.get(m) or a.get(m)})
    for p in paths:
        if not ctx.packages.is_packaged_file(p, *ctx.by_path[p][1:3]):
            ctx.claim(p, "summarized")
    return items


# ---- files with a meaning: units, sudoers, cron ---------------------------------------------------

UNIT_DIRS = ("/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/", "/usr/local/lib/systemd/system/")
UNIT_TYPES = ("service", "socket", "timer", "target", "path", "mount", "automount", "swap", "slice", "scope", "device")


def as_unit(ctx, path, item):
    for d in UNIT_DIRS:
        if not path.startswith(d):
            continue
        rel = path[len(d):]
        parts = rel.split("/")
        if len(parts) == 2 and re.search(r"\.(wants|requires|upholds)$", parts[0]):
            link = item["after"] or item["before"]
            if link["type"] != "symlink":
                return None
            unit = parts[1]
            change = "disabled" if item["change"] == "deleted" else "enabled"
            return [{"kind": "unit-state", "key": "%s|%s" % (unit, path), "unit": unit, "change": change, "target": parts[0].rsplit(".", 1)[0], "link": path}]
        unit = parts[0]
        m = re.search(r"\.(%s)(\.d)?$" % "|".join(UNIT_TYPES), unit)
        if not m:
            return None
        drop_in = bool(m.group(2))
        if drop_in:
            unit = unit[:-2]
        meta = item["after"] or item["before"]
        if len(parts) == 1 and meta["type"] == "symlink":
            ta = item["before"] and item["before"]["target"]
            tb = item["after"] and item["after"]["target"]
            if tb == "/dev/null" or ta == "/dev/null":
                change = "masked" if tb == "/dev/null" else "unmasked"
                return [{"kind": "unit-state", "key": "%s|%s" % (unit, path), "unit": unit, "change": change, "target": None, "link": path}]
            if d == "/etc/systemd/system/":
                change = "enabled" if item["change"] == "added" else "disabled" if item["change"] == "deleted" else "enabled"
                return [{"kind": "unit-state", "key": "%s|%s" % (unit, path), "unit": unit, "change": change, "target": "alias", "link": path}]
        if len(parts) > 2 or (len(parts) == 2 and not drop_in):
            return None
        out = dict(item, kind="unit", key=path, unit=unit, unitType=m.group(1), dropIn=drop_in)
        return [out]
    return None


def rule_lines(text):
    out = []
    for line in (text or "").split("\n"):
        s = line.strip()
        if s and not s.startswith("#") or s.startswith("#include"):
            out.append(s)
    return out


def line_changes(ctx, path, item):
    la = rule_lines(ctx.text("a", path) if item["before"] else "")
    lb = rule_lines(ctx.text("b", path) if item["after"] else "")
    return {"added": [x for x in lb if x not in la], "removed": [x for x in la if x not in lb]}


def as_sudoers(ctx, path, item):
    if path != "/etc/sudoers" and not re.match(r"^/etc/sudoers\.d/[^/]+$", path):
        return None
    if (item["after"] or item["before"])["type"] != "file":
        return None
    return [dict(item, kind="sudoers", rules=line_changes(ctx, path, item))]


def as_cron(ctx, path, item):
    user = None
    m = re.match(r"^/var/spool/cron/(?:crontabs/)?([^/]+)$", path)
    if m and m.group(1) not in ("crontabs", "atjobs", "atspool"):
        user = m.group(1)
    elif not (path == "/etc/crontab" or re.match(r"^/etc/cron\.(d|hourly|daily|weekly|monthly)/[^/]+$", path) or path == "/etc/anacrontab"):
        return None
    if (item["after"] or item["before"])["type"] != "file":
        return None
    entries = line_changes(ctx, path, item)
    entries = {k: [x for x in v if not x.startswith("#")] for k, v in entries.items()}
    return [dict(item, kind="cron", user=user, entries=entries)]


if __name__ == "__main__":
    sys.exit(main())
