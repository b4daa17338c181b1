/** The lab host (scripts/lab/lab.sh): a libvirt host over SSH on this machine. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const LAB_JSON = process.env.FLUID_LAB_JSON ?? '/var/tmp/fluid-lab/lab.json';

export interface Lab {
  sshHost: string;
  sshPort: number;
  sshUser: string;
  keyPath: string;
  hostKeyFingerprint: string;
  /** The host key line (type and base64), for a pinned known_hosts. */
  hostKeyPublic?: string;
  virtType: 'kvm' | 'qemu';
  libvirtUri?: string;
  sources: Array<{ name: string; state?: string }>;
}

/** The lab's description; throws (never skips) when it is missing. */
export function readLab(): Lab {
  if (!existsSync(LAB_JSON))
    throw new Error(`the lab is not set up: run npm run lab (${LAB_JSON} is missing)`);
  const lab = JSON.parse(readFileSync(LAB_JSON, 'utf8')) as Lab;
  if (!lab.sshHost || !lab.sshPort || !lab.keyPath || !lab.hostKeyFingerprint)
    throw new Error(`the lab is not set up: run npm run lab (${LAB_JSON} is incomplete)`);
  return lab;
}

/** The lab's production VM as an apply target (lab.json `prodTarget`). */
export interface ProdTarget {
  vm: string;
  address: string;
  user: string;
  keyPath: string;
  hostKeyFingerprint: string;
}

/** The lab's production target; throws (never skips) when the lab has none. */
export function prodTargetOf(lab: Lab): ProdTarget {
  const prod = (lab as Lab & { prodTarget?: ProdTarget }).prodTarget;
  if (!prod) throw new Error('lab.json has no prodTarget: run `bash scripts/lab/lab.sh up` (as root).');
  return prod;
}

const LABCTL = fileURLToPath(new URL('../../scripts/lab/labctl.py', import.meta.url));

/** A shell script run as root in a lab VM through its guest agent: a channel independent of Fluid. */
export function onLabVm(vm: string, script: string): string {
  return execFileSync('python3', [LABCTL, 'ga-exec', vm, '/bin/sh', '-c', script], {
    timeout: 120_000,
  }).toString();
}
