/** The lab host (scripts/lab/lab.sh): a libvirt host over SSH on this machine. */
import { existsSync, readFileSync } from 'node:fs';

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
