#!/usr/bin/env python3
"""Helpers of lab.sh that are easier in Python (XML, JSON). Not meant to be run by hand,
except `ga-exec`, which runs a command in a lab VM through its guest agent:

    labctl.py ga-exec DOMAIN CMD [ARG...]      (stdout/stderr/exit code of the command)
"""
import base64
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

URI = "qemu:///system"


def virsh(*args, timeout=20):
    try:
        return subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        return subprocess.CompletedProcess(args, 127, "", "virsh is not installed")


def net_gateway(root):
    ip = root.find("ip")
    if ip is None or not ip.get("address"):
        return None, None
    addr = ipaddress.ip_address(ip.get("address"))
    if ip.get("prefix"):
        net = ipaddress.ip_network(f"{addr}/{ip.get('prefix')}", strict=False)
    else:
        net = ipaddress.ip_network(f"{addr}/{ip.get('netmask', '255.255.255.0')}", strict=False)
    return addr, net


def cmd_net_xml(args):
    """stdin: `virsh net-dumpxml --inactive default`; args: OUT MAC=HOSTPART...
    Writes the patched XML (stp off, DHCP reservations for the lab VMs) to OUT.
    Exit 0 if OUT needs defining, 3 if the network is already as wanted."""
    out, pairs = args[0], args[1:]
    root = ET.fromstring(sys.stdin.read())
    changed = False
    bridge = root.find("bridge")
    if bridge is None:
        bridge = ET.SubElement(root, "bridge")
    if bridge.get("stp") != "off":
        bridge.set("stp", "off")  # with STP on, every new VM port waits ~4 s before forwarding
        changed = True
    gw, net = net_gateway(root)
    dhcp = root.find("ip/dhcp")
    if gw is not None and dhcp is not None:
        for pair in pairs:
            mac, host = pair.split("=")
            ip = str(net.network_address + int(host))
            hosts = dhcp.findall("host")
            if any(h.get("mac", "").lower() == mac.lower() and h.get("ip") == ip for h in hosts):
                continue
            for h in hosts:  # drop stale entries for this MAC or this IP
                if h.get("mac", "").lower() == mac.lower() or h.get("ip") == ip:
                    dhcp.remove(h)
            ET.SubElement(dhcp, "host", {"mac": mac, "ip": ip})
            changed = True
    if not changed:
        return 3
    with open(out, "w") as f:
        f.write(ET.tostring(root, encoding="unicode"))
    return 0


def cmd_net_info(args):
    """stdin: network XML. Prints 'GATEWAY NETWORK_ADDRESS' (or nothing)."""
    root = ET.fromstring(sys.stdin.read())
    gw, net = net_gateway(root)
    if gw is not None:
        print(gw, net.network_address)
    return 0


def cmd_lab_json(args):
    """args: OUT; everything else from the environment (set by lab.sh)."""
    out = args[0]
    e = os.environ
    net_base = e.get("LJ_NET_BASE")
    sources = []
    for name in e["LJ_VMS"].split():
        key = name.replace("-", "_")
        src = {
            "name": name,
            "hostname": e[f"LJ_{key}_HOSTNAME"],
            "disk": e[f"LJ_{key}_DISK"],
            "mac": e[f"LJ_{key}_MAC"],
            "ip": str(ipaddress.ip_address(net_base) + int(e[f"LJ_{key}_IPHOST"])) if net_base else None,
            "serialLog": e[f"LJ_{key}_SERIAL"],
            "state": e[f"LJ_{key}_STATE"],
            "demo": e.get(f"LJ_{key}_DEMO") or None,
        }
        sources.append(src)
    doc = {
        "sshHost": "127.0.0.1",
        "sshPort": int(e["LJ_SSH_PORT"]),
        "sshUser": "root",
        "keyPath": e["LJ_KEY"],
        "hostKeyFingerprint": e["LJ_HOSTKEY_FP"],
        "hostKeyPublic": e["LJ_HOSTKEY_PUB"],
        "libvirtUri": URI,
        "virtType": e["LJ_VIRT_TYPE"],
        "network": "default",
        "gateway": e.get("LJ_GATEWAY") or None,
        "sources": sources,
        "labDir": e["LJ_LAB_DIR"],
        "imageDir": e["LJ_IMG_DIR"],
        "imageKey": e["LJ_IMG_KEY"],
        "kernel": e["LJ_KERNEL"],
        "initrd": e["LJ_INITRD"],
        "kernelVersion": e.get("LJ_KVER", ""),
        # the demo service in the sources (demo/install.sh): each source's "demo" is working or fault
        "demo": {
            "url": "http://127.0.0.1/",
            "site": "/etc/nginx/sites-available/shop",
            "app": {"unit": "shop.service", "listen": "127.0.0.1:8000"},
            "fault": "the site proxies to 127.0.0.1:8001, where nothing listens: nginx answers 502",
        },
    }
    prod = next((x for x in sources if x["name"] == "fluid-lab-prod"), None)
    if prod and e.get("LJ_TARGET_FP"):
        # fluid-lab-prod as an apply target: reached through the lab host, logged in with its own key
        doc["prodTarget"] = {
            "vm": prod["name"],
            "address": prod["ip"],
            "port": 22,
            "user": e["LJ_TARGET_USER"],
            "keyPath": e["LJ_TARGET_KEY"],
            "become": "sudo",
            "hostKeyFingerprint": e["LJ_TARGET_FP"],
        }
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return 0


def pid_alive(pidfile, comm):
    try:
        pid = int(open(pidfile).read().strip())
        return open(f"/proc/{pid}/comm").read().strip() == comm
    except (OSError, ValueError):
        return False


def proc_running(comm):
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if open(f"/proc/{p}/comm").read().strip() == comm:
                    return True
            except OSError:
                pass
    return False


def cmd_status(args):
    """Print the lab's state as JSON; exit 1 if the lab is not usable."""
    e = os.environ
    lab_dir, port, key = e["LJ_LAB_DIR"], e["LJ_SSH_PORT"], e["LJ_KEY"]
    problems = []
    daemons = {d: proc_running(d) for d in ("virtlogd", "virtlockd", "libvirtd")}
    for d, ok in daemons.items():
        if not ok:
            problems.append(f"{d} is not running")
    libvirt_ok = False
    try:
        libvirt_ok = virsh("list", timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        pass
    if not libvirt_ok:
        problems.append("virsh cannot talk to qemu:///system")
    network = {"name": "default", "active": False, "autostart": False, "stpOff": False}
    sources = []
    if libvirt_ok:
        r = virsh("net-info", "default")
        if r.returncode == 0:
            info = dict(l.split(":", 1) for l in r.stdout.splitlines() if ":" in l)
            network["active"] = info.get("Active", "").strip() == "yes"
            network["autostart"] = info.get("Autostart", "").strip() == "yes"
            network["bridge"] = info.get("Bridge", "").strip()
            x = virsh("net-dumpxml", "default")
            network["stpOff"] = x.returncode == 0 and "stp='off'" in x.stdout
        if not network["active"]:
            problems.append("network 'default' is not active")
        for name in e["LJ_VMS"].split():
            key_ = name.replace("-", "_")
            r = virsh("domstate", name)
            state = r.stdout.strip() if r.returncode == 0 else "undefined"
            agent = False
            if state == "running":
                try:
                    agent = virsh("qemu-agent-command", "--timeout", "3", name,
                                  '{"execute":"guest-ping"}', timeout=10).returncode == 0
                except subprocess.TimeoutExpired:
                    pass
            disk = e[f"LJ_{key_}_DISK"]
            sources.append({"name": name, "hostname": e[f"LJ_{key_}_HOSTNAME"], "state": state,
                            "agent": agent, "disk": disk, "diskExists": os.path.exists(disk)})
            if state == "undefined":
                problems.append(f"domain {name} is not defined")
            elif not os.path.exists(disk):
                problems.append(f"disk of {name} is missing: {disk}")
    sshd_running = pid_alive(os.path.join(lab_dir, "sshd", "sshd.pid"), "sshd")
    sshd_ok = False
    if sshd_running and os.path.exists(key) and shutil.which("ssh"):
        try:
            r = subprocess.run(
                ["ssh", "-F", "none", "-i", key, "-p", port, "-o", "BatchMode=yes",
                 "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=3",
                 "-o", f"UserKnownHostsFile={os.path.join(lab_dir, 'ssh', 'known_hosts')}",
                 "-o", "StrictHostKeyChecking=yes", "root@127.0.0.1",
                 "virsh -c qemu:///system version --daemon >/dev/null"],
                capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)
            sshd_ok = r.returncode == 0
        except subprocess.TimeoutExpired:
            pass
    if not sshd_running:
        problems.append("lab sshd is not running")
    elif not sshd_ok:
        problems.append("lab sshd does not accept the lab key or cannot run virsh")
    doc = {
        "usable": not problems,
        "problems": problems,
        "daemons": daemons,
        "libvirt": libvirt_ok,
        "network": network,
        "virtType": e["LJ_VIRT_TYPE"],
        "sources": sources,
        "sshd": {"running": sshd_running, "reachable": sshd_ok, "port": int(port)},
        "labJson": os.path.join(lab_dir, "lab.json"),
    }
    try:
        print(json.dumps(doc, indent=2), flush=True)
    except BrokenPipeError:  # e.g. `lab.sh status | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if not problems else 1


def qga(dom, cmd, timeout=10):
    r = virsh("qemu-agent-command", "--timeout", str(timeout), dom, json.dumps(cmd), timeout=timeout + 10)
    if r.returncode != 0:
        raise SystemExit(f"guest agent of {dom}: {r.stderr.strip()}")
    return json.loads(r.stdout)["return"]


def cmd_ga_exec(args):
    dom, argv = args[0], args[1:]
    pid = qga(dom, {"execute": "guest-exec",
                    "arguments": {"path": argv[0], "arg": argv[1:], "capture-output": True}})["pid"]
    while True:
        st = qga(dom, {"execute": "guest-exec-status", "arguments": {"pid": pid}})
        if st.get("exited"):
            break
        time.sleep(0.1)
    sys.stdout.write(base64.b64decode(st.get("out-data", "")).decode(errors="replace"))
    sys.stderr.write(base64.b64decode(st.get("err-data", "")).decode(errors="replace"))
    return st.get("exitcode", 0)


COMMANDS = {"net-xml": cmd_net_xml, "net-info": cmd_net_info, "lab-json": cmd_lab_json,
            "status": cmd_status, "ga-exec": cmd_ga_exec}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
