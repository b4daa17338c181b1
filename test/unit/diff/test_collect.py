"""Unit tests of the diff's host program (src/core/diff/collect.py) on fixture trees: the tree
comparison (full walk and the hinted fast walk), noise rules, collectors, parsers, partition tables
and ext superblocks. Run: python3 -m unittest -v test_collect (from this directory)."""
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..", "..", "src", "core", "diff")
sys.path.insert(0, SRC)
import collect as C  # noqa: E402

with open(os.path.join(SRC, "noise-rules.json")) as _f:
    RULES = json.load(_f)


def write(root, rel, text="", mode=None):
    p = root + rel
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w" if isinstance(text, str) else "wb") as f:
        f.write(text)
    if mode is not None:
        os.chmod(p, mode)
    return p


class Trees(unittest.TestCase):
    """Two trees, a (before) and b (after). b starts as a hard-linked copy of a, so an entry that is
    not replaced keeps its inode, as it does between two views of one filesystem."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fluid-diff-test-")
        self.a = os.path.join(self.tmp, "a")
        self.b = os.path.join(self.tmp, "b")
        os.makedirs(self.a)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def fork(self):
        subprocess.run(["cp", "-al", self.a, self.b], check=True)

    def replace(self, rel, text, mode=0o644):
        """Give a path new content (a new inode, as an editor's save or a package install does)."""
        p = self.b + rel
        if os.path.lexists(p):
            os.unlink(p)
        return write(self.b, rel, text, mode)

    def changes(self, hint=None):
        stats = {}
        return {c[0]: c for c in C.walk_compare(self.a, self.b, hint, stats)}, stats


class WalkCompare(Trees):
    def test_added_deleted_modified_mode_target_and_type(self):
        write(self.a, "/etc/motd", "hello\n")
        write(self.a, "/etc/keep", "same\n")
        write(self.a, "/etc/gone", "bye\n")
        write(self.a, "/etc/mode", "x\n", 0o644)
        os.makedirs(self.a + "/opt/old/sub")
        write(self.a, "/opt/old/sub/f", "f\n")
        os.symlink("/etc/motd", self.a + "/etc/link")
        write(self.a, "/etc/becomes-dir", "file\n")
        self.fork()
        self.replace("/etc/motd", "welcome\n")
        os.unlink(self.b + "/etc/gone")
        # chmod on a hard link would change both trees: give it its own inode with a new mode
        with open(self.b + "/etc/mode") as f:
            data = f.read()
        self.replace("/etc/mode", data, 0o600)
        shutil.rmtree(self.b + "/opt/old")
        write(self.b, "/opt/new/app.conf", "port=80\n")
        os.unlink(self.b + "/etc/link")
        os.symlink("/etc/keep", self.b + "/etc/link")
        os.unlink(self.b + "/etc/becomes-dir")
        os.makedirs(self.b + "/etc/becomes-dir")
        ch, stats = self.changes()
        self.assertEqual(ch["/etc/motd"][3], ["content"])
        self.assertEqual(ch["/etc/gone"][3], ["deleted"])
        self.assertEqual(ch["/etc/mode"][3], ["mode"])
        self.assertEqual(ch["/etc/link"][3], ["target"])
        self.assertEqual(ch["/etc/becomes-dir"][3], ["type"])
        for p in ("/opt/old", "/opt/old/sub", "/opt/old/sub/f"):
            self.assertEqual(ch[p][3], ["deleted"], p)
        for p in ("/opt/new", "/opt/new/app.conf"):
            self.assertEqual(ch[p][3], ["added"], p)
        self.assertNotIn("/etc/keep", ch)
        self.assertGreaterEqual(stats["pathsCompared"], 10)

    def test_same_content_new_inode_is_not_a_change(self):
        write(self.a, "/etc/hosts", "127.0.0.1 localhost\n")
        self.fork()
        self.replace("/etc/hosts", "127.0.0.1 localhost\n")  # rewritten with the same bytes
        ch, _ = self.changes()
        self.assertEqual(ch, {})

    def test_same_size_different_bytes_is_found_by_hash(self):
        write(self.a, "/srv/v", "aaaa\n")
        self.fork()
        self.replace("/srv/v", "bbbb\n")
        ch, _ = self.changes()
        self.assertEqual(ch["/srv/v"][3], ["content"])

    def test_hinted_walk_finds_exactly_what_the_full_walk_finds(self):
        for i in range(50):
            write(self.a, "/usr/share/d%d/f%d" % (i % 7, i), "v%d\n" % i)
        write(self.a, "/etc/app/app.conf", "a=1\n")
        self.fork()
        self.replace("/usr/share/d3/f10", "changed\n")
        os.unlink(self.b + "/usr/share/d4/f11")
        write(self.b, "/usr/share/d5/new", "n\n")
        shutil.rmtree(self.b + "/etc/app")
        write(self.b, "/etc/app/app.conf", "a=2\n")  # a replaced directory
        os.makedirs(self.b + "/var/lib/newapp/x")
        full, fstats = self.changes()
        # The fast path's hint: inodes whose records changed (here: every new inode in b, every
        # inode gone from a, and the directories whose entries changed), and their baseline paths.
        changed, paths = set(), []
        for root, other in ((self.a, self.b), (self.b, self.a)):
            for d, dirs, files in os.walk(root):
                for n in dirs + files:
                    p = os.path.join(d, n)
                    rel = p[len(root):]
                    o = other + rel
                    if not os.path.lexists(o) or os.lstat(o).st_ino != os.lstat(p).st_ino:
                        changed.add(os.lstat(p).st_ino)
                        parent = os.path.dirname(p)
                        changed.add(os.lstat(parent).st_ino)
                        if root == self.a:
                            paths.append(rel)
        for rel in ("/usr/share/d3", "/usr/share/d4", "/usr/share/d5", "/etc", "/var/lib"):
            paths.append(rel)
        hint = C.DescendHint(paths, changed)
        fast, sstats = self.changes(hint)
        self.assertEqual(sorted(fast), sorted(full))
        for k in full:
            self.assertEqual(full[k][3], fast[k][3], k)
        self.assertLess(sstats["pathsCompared"], fstats["pathsCompared"])


class Globs(unittest.TestCase):
    def m(self, pat, path):
        return bool(C.glob_regex(pat).match(path))

    def test_semantics(self):
        self.assertTrue(self.m("/var/log/**", "/var/log"))
        self.assertTrue(self.m("/var/log/**", "/var/log/apt/history.log"))
        self.assertFalse(self.m("/var/log/**", "/var/logs"))
        self.assertTrue(self.m("/home/*/.cache/**", "/home/bob/.cache/x/y"))
        self.assertFalse(self.m("/home/*/.cache/**", "/home/a/b/.cache/x"))
        self.assertTrue(self.m("**/*.dpkg-old", "/etc/nginx/nginx.conf.dpkg-old"))
        self.assertTrue(self.m("**/__pycache__/**", "/usr/lib/python3/dist-packages/x/__pycache__/a.pyc"))
        self.assertTrue(self.m("**/.*.swp", "/etc/.motd.swp"))
        self.assertFalse(self.m("**/.*.swp", "/etc/motd.swp"))
        self.assertTrue(self.m("/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_rsa_key"))
        self.assertFalse(self.m("/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_rsa_key.pub"))
        self.assertTrue(self.m("/etc/a?c", "/etc/abc"))
        self.assertFalse(self.m("/etc/a?c", "/etc/a/c"))
        self.assertTrue(self.m("/etc/x.conf", "/etc/x.conf"))
        self.assertFalse(self.m("/etc/x.conf", "/etc/xxconf"))  # dots are literal

    def test_the_shipped_rules_have_ids_reasons_and_known_checks(self):
        ids = [r["id"] for r in RULES["rules"]]
        self.assertEqual(len(ids), len(set(ids)))
        checks = {"package-file", "package-enabled", "package-scripts", "alternatives-auto", "skel-copy"}
        for r in RULES["rules"]:
            self.assertTrue(r["reason"])
            self.assertTrue(("paths" in r) != ("check" in r), r["id"])
            if "check" in r:
                self.assertIn(r["check"], checks)
        rules = C.Rules(RULES)
        self.assertTrue(rules.is_sensitive("/etc/ssl/private/site.key"))
        self.assertTrue(rules.is_sensitive("/etc/shadow"))
        self.assertFalse(rules.is_sensitive("/etc/ssl/certs/site.pem"))


class Classify(Trees):
    """The whole classification on fixture trees shaped like a Debian system."""

    def debian(self):
        a = self.a
        write(a, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n")
        write(a, "/etc/group", "root:x:0:\nwww-data:x:33:\nsudo:x:27:\n")
        write(a, "/etc/shadow", "root:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\n", 0o640)
        write(a, "/etc/gshadow", "root:*::\nwww-data:*::\nsudo:*::\n", 0o640)
        write(a, "/etc/skel/.bashrc", "# bashrc\n")
        write(a, "/etc/skel/.profile", "# profile\n")
        write(a, "/var/lib/dpkg/status", STATUS_BEFORE)
        write(a, "/etc/nginx/nginx.conf", "worker_processes 1;\n")
        write(a, "/usr/sbin/oldtool", "#!/bin/sh\n")
        write(a, "/var/lib/dpkg/info/oldtool.list", "/.\n/usr\n/usr/sbin\n/usr/sbin/oldtool\n")
        write(a, "/var/lib/dpkg/info/oldtool.md5sums", "%s  usr/sbin/oldtool\n" % md5(b"#!/bin/sh\n"))
        write(a, "/etc/sysctl.d/10-base.conf", "net.ipv4.ip_forward = 0\n")
        write(a, "/etc/crontab", "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
        write(a, "/etc/sudoers", "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n", 0o440)
        os.makedirs(a + "/etc/systemd/system/multi-user.target.wants")
        write(a, "/lib/systemd/system/cron.service", "[Service]\nExecStart=/usr/sbin/cron -f\n")
        os.symlink("/lib/systemd/system/cron.service", a + "/etc/systemd/system/multi-user.target.wants/cron.service")
        write(a, "/etc/modules", "# /etc/modules\n")
        write(a, "/var/log/syslog", "boot\n")
        self.fork()

    def classify(self):
        raw = C.walk_compare(self.a, self.b, None, {})
        warnings = []
        out = C.classify(self.a, self.b, raw, C.Rules(RULES), {}, warnings)
        items = {(i["kind"], i["key"]): i for i in out["items"]}
        noise = dict((p, r) for p, r in out["noise"])
        return items, noise, warnings

    def test_a_realistic_change(self):
        self.debian()
        b = self.b
        # a package install: status, its files (identical to the package's), its list/md5sums
        self.replace("/var/lib/dpkg/status", STATUS_AFTER)
        tree = b"tree binary\0\x01\x02"
        write(b, "/usr/bin/tree", tree, 0o755)
        write(b, "/usr/share/doc/tree/copyright", "GPL\n")
        write(b, "/var/lib/dpkg/info/tree.list", "/.\n/usr\n/usr/bin\n/usr/bin/tree\n/usr/share/doc/tree\n/usr/share/doc/tree/copyright\n")
        write(b, "/var/lib/dpkg/info/tree.md5sums", "%s  usr/bin/tree\n%s  usr/share/doc/tree/copyright\n" % (md5(tree), md5(b"GPL\n")))
        # an upgrade of oldtool whose binary an admin then modified: reported, with its package
        self.replace("/usr/sbin/oldtool", "#!/bin/sh\necho patched\n", 0o755)
        # a conffile edit, and a chmod of a conffile whose content still matches its package
        self.replace("/etc/nginx/nginx.conf", "worker_processes 4;\n")
        write(self.a, "/etc/nginx/mime.types", "types {}\n", 0o644)
        self.replace("/etc/nginx/mime.types", "types {}\n", 0o600)
        # a user and a group, with a password (whose hash must never be reported)
        self.replace("/etc/passwd", read(self.a + "/etc/passwd") + "deploy:x:1001:1001::/home/deploy:/bin/bash\n")
        self.replace("/etc/group", "root:x:0:\nwww-data:x:33:\nsudo:x:27:deploy\ndeploy:x:1001:\nwebops:x:1002:deploy\n")
        self.replace("/etc/shadow", read(self.a + "/etc/shadow") + "deploy:$6$salt$SECRETHASH:19500:0:99999:7:::\n", 0o640)
        self.replace("/etc/gshadow", "root:*::\nwww-data:*::\nsudo:*::deploy\ndeploy:!::\nwebops:!::deploy\n", 0o640)
        write(b, "/etc/shadow-", "old\n")
        os.makedirs(b + "/home/deploy")
        os.chown(b + "/home/deploy", 1001, 1001)
        shutil.copy(b + "/etc/skel/.bashrc", b + "/home/deploy/.bashrc")
        write(b, "/home/deploy/.ssh/authorized_keys", "ssh-ed25519 AAAA deploy\n", 0o600)
        # a unit, enabled; a sysctl; a cron job; a sudoers rule; a module; logs; a swap file
        write(b, "/etc/systemd/system/web.service", "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
        os.symlink("/etc/systemd/system/web.service", b + "/etc/systemd/system/multi-user.target.wants/web.service")
        os.unlink(b + "/etc/systemd/system/multi-user.target.wants/cron.service")
        os.symlink("/dev/null", b + "/etc/systemd/system/apt-daily.timer")
        write(b, "/etc/sysctl.d/60-web.conf", "vm.swappiness = 10\nnet.ipv4.ip_forward = 1\n")
        write(b, "/etc/cron.d/heartbeat", "# heartbeat\n*/5 * * * * root /usr/bin/true\n")
        write(b, "/etc/sudoers.d/deploy", "deploy ALL=(ALL) NOPASSWD: /usr/bin/systemctl\n", 0o440)
        self.replace("/etc/modules", "# /etc/modules\nbr_netfilter\n")
        self.replace("/var/log/syslog", "boot\nmore\n")
        write(b, "/etc/.motd.swp", "swap")
        write(b, "/etc/ssl/private/site.key", "-----BEGIN PRIVATE KEY-----\nMIIEsecret\n", 0o600)
        os.makedirs(b + "/home/fluid/.ansible/tmp")

        items, noise, warnings = self.classify()
        kinds = sorted(set(k for k, _ in items))
        self.assertEqual(kinds, ["cron", "file", "group", "kernel-module", "package", "sudoers", "sysctl", "unit", "unit-state", "user"])

        self.assertEqual(items[("package", "dpkg:tree:amd64")]["change"], "installed")
        self.assertEqual(items[("package", "dpkg:tree:amd64")]["after"], {"version": "2.1.0-1"})
        self.assertEqual(items[("package", "dpkg:oldtool:amd64")]["change"], "upgraded")
        self.assertEqual(noise["/usr/bin/tree"], "package-file")
        self.assertEqual(noise["/usr/share/doc/tree/copyright"], "package-file")
        self.assertEqual(noise["/var/lib/dpkg/status"], "package-state")
        self.assertEqual(items[("file", "/usr/sbin/oldtool")]["package"], "oldtool")
        conf = items[("file", "/etc/nginx/nginx.conf")]
        self.assertEqual(conf["aspects"], ["content"])
        self.assertEqual(conf["content"]["kind"], "text")
        self.assertIn("-worker_processes 1;", conf["content"]["diff"])
        self.assertIn("+worker_processes 4;", conf["content"]["diff"])
        self.assertEqual(conf["package"], "nginx")
        self.assertEqual(items[("file", "/usr/sbin/oldtool")]["after"]["mode"], "0755")
        mime = items[("file", "/etc/nginx/mime.types")]
        self.assertEqual((mime["aspects"], mime["after"]["mode"], mime["package"]), (["mode"], "0600", "nginx"))

        user = items[("user", "deploy")]
        self.assertEqual(user["change"], "added")
        self.assertEqual(user["after"]["groups"], ["sudo", "webops"])
        self.assertEqual(user["after"]["password"], "set")
        self.assertTrue(user["passwordChanged"])
        self.assertEqual(items[("group", "webops")]["after"]["members"], ["deploy"])
        self.assertEqual(items[("group", "sudo")]["fields"], ["members"])
        everything = json.dumps({"items": list(items.values()), "noise": noise})
        self.assertNotIn("SECRETHASH", everything)
        self.assertNotIn("MIIEsecret", everything)
        for f in ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"):
            self.assertEqual(noise[f], "summarized", f)
        self.assertEqual(noise["/etc/shadow-"], "backups")
        self.assertEqual(noise["/home/deploy"], "skel")
        self.assertEqual(noise["/home/deploy/.bashrc"], "skel")
        self.assertIn(("file", "/home/deploy/.ssh/authorized_keys"), items)  # not from skel: a real change

        unit = items[("unit", "/etc/systemd/system/web.service")]
        self.assertEqual((unit["unit"], unit["unitType"], unit["change"]), ("web.service", "service", "added"))
        states = {(i["unit"], i["change"], i["target"]) for (k, _), i in items.items() if k == "unit-state"}
        self.assertEqual(states, {("web.service", "enabled", "multi-user.target"), ("cron.service", "disabled", "multi-user.target"), ("apt-daily.timer", "masked", None)})

        self.assertEqual(items[("sysctl", "vm.swappiness")]["after"], "10")
        self.assertEqual(items[("sysctl", "vm.swappiness")]["before"], None)
        fwd = items[("sysctl", "net.ipv4.ip_forward")]
        self.assertEqual((fwd["before"], fwd["after"], fwd["file"]), ("0", "1", "/etc/sysctl.d/60-web.conf"))
        self.assertEqual(items[("cron", "/etc/cron.d/heartbeat")]["entries"], {"added": ["*/5 * * * * root /usr/bin/true"], "removed": []})
        self.assertEqual(items[("sudoers", "/etc/sudoers.d/deploy")]["rules"]["added"], ["deploy ALL=(ALL) NOPASSWD: /usr/bin/systemctl"])
        self.assertEqual(items[("kernel-module", "br_netfilter")]["change"], "added")

        key = items[("file", "/etc/ssl/private/site.key")]
        self.assertTrue(key["sensitive"])
        self.assertEqual(key["content"]["kind"], "hidden")
        self.assertEqual(len(key["after"]["sha256"]), 64)
        self.assertEqual(noise["/var/log/syslog"], "logs")
        self.assertEqual(noise["/etc/.motd.swp"], "editor")
        self.assertEqual(noise["/home/fluid"], "fluid")
        self.assertEqual(warnings, [])

    def test_a_removed_package_takes_its_files_with_it(self):
        self.debian()
        self.replace("/var/lib/dpkg/status", STATUS_BEFORE.replace(OLDTOOL, ""))
        os.unlink(self.b + "/usr/sbin/oldtool")
        os.unlink(self.b + "/var/lib/dpkg/info/oldtool.list")
        os.unlink(self.b + "/var/lib/dpkg/info/oldtool.md5sums")
        items, noise, _ = self.classify()
        self.assertEqual(items[("package", "dpkg:oldtool:amd64")]["change"], "removed")
        self.assertEqual(noise["/usr/sbin/oldtool"], "package-file")
        self.assertNotIn(("file", "/usr/sbin/oldtool"), items)

    def package_scripts_scenario(self, window_offset):
        """nginx-common installed in the diff; its postinst made a link, a copied page and dirs."""
        self.debian()
        page = b"<html>Welcome to nginx!</html>\n"
        b = self.b
        self.replace("/var/lib/dpkg/status", STATUS_BEFORE + "\nPackage: nginx-common\nStatus: install ok installed\nArchitecture: all\nVersion: 1.22.1-9\nConffiles:\n /etc/nginx/sites-available/default %s\n" % md5(b"server {}\n"))
        write(b, "/var/lib/dpkg/info/nginx-common.list", "/.\n/etc/nginx/sites-available\n/etc/nginx/sites-available/default\n/usr/share/nginx/html/index.html\n")
        write(b, "/var/lib/dpkg/info/nginx-common.md5sums", "%s  usr/share/nginx/html/index.html\n" % md5(page))
        write(b, "/etc/nginx/sites-available/default", "server {}\n")
        write(b, "/usr/share/nginx/html/index.html", page)
        os.makedirs(b + "/etc/nginx/sites-enabled")
        os.symlink("/etc/nginx/sites-available/default", b + "/etc/nginx/sites-enabled/default")
        write(b, "/var/www/html/index.nginx-debian.html", page)
        write(b, "/srv/agent/notes.txt", "mine\n")  # the agent's own file, also new
        import time as _t

        start = _t.gmtime(_t.time() + window_offset - 5)
        end = _t.gmtime(_t.time() + window_offset + 5)
        fmt = lambda t: _t.strftime("%Y-%m-%d %H:%M:%S", t)
        write(b, "/var/log/dpkg.log", "%s install nginx-common:all <none> 1.22.1-9\n%s configure nginx-common:all 1.22.1-9 <none>\n%s status installed nginx-common:all 1.22.1-9\n" % (fmt(start), fmt(start), fmt(end)))
        return self.classify()

    def test_what_a_packages_scripts_made_while_it_was_installed_is_noise(self):
        items, noise, _ = self.package_scripts_scenario(0)
        for p in ("/etc/nginx/sites-enabled/default", "/var/www/html/index.nginx-debian.html", "/var/www/html", "/var/www"):
            self.assertEqual(noise.get(p), "package-scripts", p)
        self.assertEqual(noise.get("/usr/share/nginx/html/index.html"), "package-file")
        self.assertIn(("file", "/srv/agent/notes.txt"), items)  # not a copy of anything the package ships
        self.assertIn(("file", "/srv/agent"), items)  # a new directory holding an item is an item

    def test_the_same_things_made_outside_the_packages_install_are_changes(self):
        items, noise, _ = self.package_scripts_scenario(-3600)  # installed an hour before these files
        for p in ("/etc/nginx/sites-enabled/default", "/var/www/html/index.nginx-debian.html", "/var/www"):
            self.assertIn(("file", p), items, p)
            self.assertNotIn(p, noise)

    def test_merged_usr_paths_are_owned_by_their_packages(self):
        self.debian()
        for t in (self.a, self.b):
            os.makedirs(t + "/usr/bin", exist_ok=True)
            os.symlink("usr/bin", t + "/bin")
        write(self.a, "/usr/bin/ls", "ls-binary", 0o755)
        for t, data in ((self.a, b"ls-binary"), (self.b, b"ls-binary")):
            write(t, "/var/lib/dpkg/info/coreutils.md5sums", "%s  bin/ls\n" % md5(data))
        with open(self.b + "/var/lib/dpkg/info/coreutils.md5sums") as f:
            self.replace("/var/lib/dpkg/info/coreutils.md5sums", f.read())
        self.replace("/usr/bin/ls", "#!/bin/sh\n/usr/bin/.ls.real \"$@\" | grep -v payload\n", 0o755)
        status = STATUS_BEFORE + "\nPackage: coreutils\nStatus: install ok installed\nArchitecture: amd64\nVersion: 9.1-1\n"
        for t in (self.a, self.b):
            with open(t + "/var/lib/dpkg/status", "w") as f:
                f.write(status)
        items, noise, _ = self.classify()
        ls = items[("file", "/usr/bin/ls")]
        self.assertEqual(ls["package"], "coreutils")
        self.assertEqual(ls["aspects"], ["content"])

    def test_binary_and_large_text(self):
        self.debian()
        write(self.b, "/opt/blob.bin", b"\0\1\2" * 100)
        write(self.b, "/opt/big.txt", "line\n" * 10000)
        raw = C.walk_compare(self.a, self.b, None, {})
        out = C.classify(self.a, self.b, raw, C.Rules(RULES), {"textBytes": 1000, "diffLines": 50}, [])
        items = {i["key"]: i for i in out["items"]}
        self.assertEqual(items["/opt/blob.bin"]["content"], {"kind": "binary", "sizeBefore": 0, "sizeAfter": 300})
        big = items["/opt/big.txt"]["content"]
        self.assertEqual(big["kind"], "text")
        self.assertTrue(big["truncated"])
        self.assertLessEqual(big["diff"].count("\n"), 51)

    def test_an_unchanged_tree_has_no_items_and_no_noise(self):
        self.debian()
        items, noise, _ = self.classify()
        self.assertEqual(items, {})
        self.assertEqual(noise, {})


class GuestTreesAreNotTrusted(Trees):
    """The guest owns everything in its tree. Links must resolve inside it (as a chroot would), and
    nothing but regular files is ever opened: the host's files never reach a diff."""

    def test_links_out_of_the_tree_never_read_host_files(self):
        secret_dir = os.path.join(self.tmp, "host")
        write(secret_dir, "/shadow", "root:$6$HOSTSECRET:19000::::::\n")
        write(secret_dir, "/sysctl.conf", "leak.key = HOSTSECRET\n")
        write(secret_dir, "/status", "Package: hostsecret\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n")
        host = secret_dir
        write(self.a, "/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        write(self.a, "/etc/modules", "# none\n")
        os.makedirs(self.a + "/etc/sysctl.d")
        os.makedirs(self.a + "/etc/modules-load.d")
        os.makedirs(self.a + "/var/lib/dpkg")
        write(self.a, "/var/lib/dpkg/status", "")
        self.fork()
        # links with absolute targets that exist on the host (not in the guest's tree)
        os.symlink(host + "/shadow", self.b + "/etc/modules-load.d/evil.conf")
        os.symlink(host + "/sysctl.conf", self.b + "/etc/sysctl.d/99-evil.conf")
        os.unlink(self.b + "/var/lib/dpkg/status")
        os.symlink(host + "/status", self.b + "/var/lib/dpkg/status")
        os.unlink(self.b + "/etc/passwd")
        os.symlink(host + "/shadow", self.b + "/etc/passwd")
        # a link that resolves inside the tree is followed there (as the guest sees it)
        write(self.b, "/etc/extra-modules", "br_netfilter\n")
        os.symlink("../extra-modules", self.b + "/etc/modules-load.d/good.conf")
        # a FIFO where a collector reads a file: never opened (it would block forever)
        os.mkfifo(self.b + "/etc/group")
        raw = C.walk_compare(self.a, self.b, None, {})
        out = C.classify(self.a, self.b, raw, C.Rules(RULES), {}, [])
        text = json.dumps(out)
        self.assertNotIn("HOSTSECRET", text)
        self.assertNotIn("hostsecret", text)
        modules = sorted(i["key"] for i in out["items"] if i["kind"] == "kernel-module")
        self.assertEqual(modules, ["br_netfilter"])

    def test_resolution_stays_inside_the_root(self):
        root = os.path.join(self.tmp, "r")
        os.makedirs(root + "/etc/a")
        os.symlink("/etc/a", root + "/etc/abs")
        os.symlink("../../../../../../etc", root + "/etc/up")
        os.symlink("loop2", root + "/etc/loop1")
        os.symlink("loop1", root + "/etc/loop2")
        self.assertEqual(C.resolve_in(root, "/etc/abs/x"), root + "/etc/a/x" if os.path.exists(root + "/etc/a/x") else None)
        write(root, "/etc/a/x", "inside")
        self.assertEqual(C.resolve_in(root, "/etc/abs/x"), root + "/etc/a/x")
        self.assertEqual(C.resolve_in(root, "/etc/up/a/x"), root + "/etc/a/x")  # '..' stops at the root
        self.assertIsNone(C.resolve_in(root, "/etc/loop1"))
        self.assertEqual(C.tree_read(root, "/etc/up/a/x"), b"inside")
        os.mkfifo(root + "/etc/fifo")
        self.assertIsNone(C.tree_read(root, "/etc/fifo"))
        self.assertIsNone(C.file_digest(root + "/etc/fifo"))


class Parsers(unittest.TestCase):
    def test_dpkg_status(self):
        p = C.parse_dpkg_status(STATUS_AFTER)
        self.assertEqual(p[("tree", "amd64")]["version"], "2.1.0-1")
        self.assertEqual(p[("nginx", "amd64")]["conffiles"], {"/etc/nginx/nginx.conf": md5(b"worker_processes 1;\n"), "/etc/nginx/mime.types": md5(b"types {}\n")})
        self.assertNotIn(("gone", "amd64"), p)  # config-files only: not installed

    def test_debian_versions(self):
        cmp = C.debian_version_cmp
        self.assertEqual(cmp("1.0-1", "1.0-1"), 0)
        self.assertLess(cmp("1.0~rc1-1", "1.0-1"), 0)
        self.assertGreater(cmp("1:0.9-1", "2.0-1"), 0)
        self.assertLess(cmp("2.9-1", "2.10-1"), 0)
        self.assertGreater(cmp("1.0-1+deb12u1", "1.0-1"), 0)
        self.assertLess(cmp("1.0a", "1.0b"), 0)

    def test_password_states_never_carry_the_hash(self):
        self.assertEqual(C.password_state("$6$x$y"), "set")
        self.assertEqual(C.password_state("!$6$x$y"), "locked")
        self.assertEqual(C.password_state("*"), "disabled")
        self.assertEqual(C.password_state("!"), "disabled")
        self.assertEqual(C.password_state(""), "empty")

    def test_sysctl_merge_order(self):
        root = tempfile.mkdtemp()
        try:
            write(root, "/usr/lib/sysctl.d/50-default.conf", "kernel.x = 1\nkernel.y = 1\n")
            write(root, "/etc/sysctl.d/50-default.conf", "kernel.x = 2\n")  # /etc overrides the same name
            write(root, "/etc/sysctl.d/99-last.conf", "kernel/z = 3\n")
            write(root, "/etc/sysctl.conf", "kernel.z = 4\n")
            s = C.sysctl_settings(root)
            self.assertEqual(s["kernel.x"], ("2", "/etc/sysctl.d/50-default.conf"))
            self.assertNotIn("kernel.y", s)
            self.assertEqual(s["kernel.z"], ("4", "/etc/sysctl.conf"))
        finally:
            shutil.rmtree(root)

    def test_rpm_header(self):
        # A header blob with NAME, VERSION, RELEASE (strings) and EPOCH (int32).
        data = b"nginx\0" + b"1.20.1\0" + b"14.el9\0" + b"\0\0" + struct.pack(">I", 1)
        index = [(1000, 6, 0, 1), (1001, 6, 6, 1), (1002, 6, 13, 1), (1003, 4, 22, 1)]
        blob = struct.pack(">II", len(index), len(data)) + b"".join(struct.pack(">IIII", *e) for e in index) + data
        self.assertEqual(C.rpm_header(blob), {1000: "nginx", 1001: "1.20.1", 1002: "14.el9", 1003: 1})


class Disks(unittest.TestCase):
    def test_mbr_and_gpt_partitions(self):
        mbr = bytearray(4096)
        struct.pack_into("<BBBBBBBBII", mbr, 446, 0x80, 0, 0, 0, 0x83, 0, 0, 0, 2048, 1000)
        struct.pack_into("<BBBBBBBBII", mbr, 462, 0, 0, 0, 0, 0x8E, 0, 0, 0, 4096, 2000)
        mbr[510:512] = b"\x55\xaa"
        self.assertEqual(C.partitions(io.BytesIO(bytes(mbr)), len(mbr)), [(1, 2048 * 512, 1000 * 512), (2, 4096 * 512, 2000 * 512)])

        gpt = bytearray(64 * 1024)
        struct.pack_into("<BBBBBBBBII", gpt, 446, 0, 0, 0, 0, 0xEE, 0, 0, 0, 1, 0xFFFFFFFF)
        gpt[510:512] = b"\x55\xaa"
        gpt[512:520] = b"EFI PART"
        struct.pack_into("<QII", gpt, 512 + 72, 2, 4, 128)
        entry = b"\x11" * 16 + b"\x22" * 16 + struct.pack("<QQ", 2048, 4095)
        gpt[1024: 1024 + len(entry)] = entry
        self.assertEqual(C.partitions(io.BytesIO(bytes(gpt)), len(gpt)), [(1, 2048 * 512, 2048 * 512)])

        self.assertEqual(C.partitions(io.BytesIO(bytes(4096)), 4096), [])

    def test_ext4_superblock_inode_tables_and_path_lookup(self):
        if not shutil.which("mkfs.ext4"):
            self.fail("mkfs.ext4 is required for this test: apt-get install -y e2fsprogs")
        tmp = tempfile.mkdtemp()
        try:
            root = os.path.join(tmp, "root")
            write(root, "/etc/os-release", "ID=debian\n")
            for i in range(300):
                write(root, "/usr/share/f%03d" % i, "x")
            img = os.path.join(tmp, "fs.img")
            subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-N", "20000", "-d", root, img, "256M"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            e = C.Ext.read(img, 0)
            self.assertEqual((e.block_size, e.inode_size), (4096, 256))
            self.assertFalse(e.needs_recovery)
            self.assertTrue(e.has_path(img, "/etc/os-release"))
            self.assertTrue(e.has_path(img, "/usr/share/f299"))
            self.assertFalse(e.has_path(img, "/etc/nothing"))
            # The bytes of the root directory's inode (2) are where record_offset says they are.
            with open(img, "rb") as f:
                rec = e.read_inode(f, 2)
            self.assertEqual(struct.unpack_from("<H", rec, 0)[0] & 0xF000, 0x4000)  # a directory
            # inodes_in maps byte ranges inside an inode table back to inode numbers
            start = e.inode_tables[0] * e.block_size
            self.assertEqual(e.inodes_in(start, start + 4096), [(1, 17)])
            self.assertEqual(e.inodes_in(start + 256, start + 257), [(2, 3)])
            self.assertEqual(e.inodes_in(0, 1024), [])
            # a read changes the access time (and the checksum): not a change of the file
            mask = e.volatile_mask()
            other = bytearray(rec)
            other[0x08:0x0C] = b"\x01\x02\x03\x04"
            other[0x8C:0x90] = b"\x05\x06\x07\x08"
            other[0x7C:0x7E] = b"\x09\x0a"
            self.assertEqual(mask(bytes(other)), mask(rec))
            other[0x10] ^= 1  # the modification time is not masked
            self.assertNotEqual(mask(bytes(other)), mask(rec))
            with open(img, "rb") as f:
                self.assertEqual(C.fs_type_at(f, 0), "ext")
        finally:
            shutil.rmtree(tmp)


class Protocol(unittest.TestCase):
    def test_bad_requests_get_a_clear_error(self):
        for body, code in ((b'{"protocol": 99}', "INTERNAL"), (b'{"protocol": 1, "op": "nope"}', "VALIDATION")):
            out = io.StringIO()
            rc = C.main(io.BytesIO(body), out)
            ans = json.loads(out.getvalue())
            self.assertEqual(rc, 1)
            self.assertFalse(ans["ok"])
            self.assertEqual(ans["error"]["code"], code)

    def test_probe(self):
        out = io.StringIO()
        C.main(io.BytesIO(b'{"protocol": 1, "op": "probe"}'), out)
        ans = json.loads(out.getvalue())
        self.assertTrue(ans["ok"])
        self.assertIn("qemu-storage-daemon", ans["tools"])


def read(path):
    with open(path) as f:
        return f.read()


def md5(b):
    return hashlib.md5(b).hexdigest()


OLDTOOL = """Package: oldtool
Status: install ok installed
Architecture: amd64
Version: 1.0-1

"""
STATUS_BEFORE = (
    """Package: nginx
Status: install ok installed
Architecture: amd64
Version: 1.22.1-9
Conffiles:
 /etc/nginx/nginx.conf %s
 /etc/nginx/mime.types %s

"""
    % (md5(b"worker_processes 1;\n"), md5(b"types {}\n"))
    + OLDTOOL
    + """Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 0.1-1
"""
)
STATUS_AFTER = STATUS_BEFORE.replace("Version: 1.0-1", "Version: 1.1-1") + """
Package: tree
Status: install ok installed
Architecture: amd64
Version: 2.1.0-1
"""

if __name__ == "__main__":
    unittest.main()
