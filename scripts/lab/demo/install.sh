#!/bin/bash
# Put the lab's demo service into a VM's staging tree (called by mkvmdisk.sh before mkfs):
#
#   install.sh STAGE working|fault
#
# The service: nginx on port 80 (from the image) in front of the "shop" app (shop.py, a systemd unit
# running as www-data on 127.0.0.1:8000). `working` is the clean state (fluid-lab-web): nginx proxies
# to 8000 and http://127.0.0.1/ answers 200. `fault` is production's diagnosable fault
# (fluid-lab-prod): the site proxies to 8001, where nothing listens, so nginx answers 502 Bad Gateway
# while shop.service itself is fine. The fix is one line in /etc/nginx/sites-available/shop.
#
# STAGE is a hard-link copy of the shared rootfs: files are removed before they are written, never
# written through a link.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
S=${1:?usage: install.sh STAGE working|fault}
case ${2:-} in
  working) PORT=8000 ;;
  fault) PORT=8001 ;;
  *) echo "install.sh: the state is working or fault, not '${2:-}'" >&2; exit 2 ;;
esac
[ -d "$S/etc/nginx/sites-available" ] || { echo "install.sh: $S has no nginx (build-image.sh installs it)" >&2; exit 1; }

put() { # MODE SRC DEST: a fresh file (never through a shared hard link)
  rm -f "$S$3"
  install -D -m "$1" "$2" "$S$3"
}

put 0755 "$HERE/shop.py" /opt/shop/shop.py
put 0644 "$HERE/shop.service" /etc/systemd/system/shop.service
mkdir -p "$S/etc/systemd/system/multi-user.target.wants"
ln -sfn /etc/systemd/system/shop.service "$S/etc/systemd/system/multi-user.target.wants/shop.service"

rm -f "$S/etc/nginx/sites-available/shop"
sed "s/@UPSTREAM_PORT@/$PORT/" "$HERE/nginx-shop.conf" > "$S/etc/nginx/sites-available/shop"
chmod 0644 "$S/etc/nginx/sites-available/shop"
rm -f "$S/etc/nginx/sites-enabled/default" "$S/etc/nginx/sites-enabled/shop"
ln -s ../sites-available/shop "$S/etc/nginx/sites-enabled/shop"
