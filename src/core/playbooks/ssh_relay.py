# ProxyCommand for OpenSSH: relay stdin/stdout to a Unix socket.
#
# Usage: ssh_relay.py SOCKET
#
# When Fluid runs Ansible against a sandbox, the connection to the sandbox's sshd goes through the
# libvirt host the way all of Fluid's connections do (an SSH jump with Fluid's own pinned host
# connection, or a direct socket on the local host). Fluid listens on SOCKET, inside a private
# (0700) directory, and opens that path for each connection; this program only joins ssh's stdio to
# it, so the host's credentials never leave Fluid's process.
import os
import select
import socket
import sys


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: ssh_relay.py SOCKET\n")
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(argv[1])
    except OSError as e:
        sys.stderr.write("fluid relay: cannot reach %s: %s\n" % (argv[1], e))
        return 1
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.fileno()
    open_in = True
    while True:
        watch = [sock] + ([stdin] if open_in else [])
        ready, _, _ = select.select(watch, [], [])
        if stdin in ready:
            data = os.read(stdin, 65536)
            if data:
                sock.sendall(data)
            else:
                open_in = False
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        if sock in ready:
            data = sock.recv(65536)
            if not data:
                return 0
            view = memoryview(data)
            while view:
                n = os.write(stdout, view)
                view = view[n:]


if __name__ == "__main__":
    sys.exit(main(sys.argv))
