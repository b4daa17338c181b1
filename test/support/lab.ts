/** The lab host: tests that need it fail loudly when it is missing, they never skip. */
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';

export interface LabSource {
  name: string;
  hostname: string;
  disk: string;
  mac: string;
  ip?: string;
  state: string;
}

export interface Lab {
  sshHost: string;
  sshPort: number;
  sshUser: string;
  keyPath: string;
  hostKeyFingerprint: string;
  libvirtUri: string;
  virtType: 'kvm' | 'qemu';
  sources: LabSource[];
  labDir: string;
}

export const LAB_DIR = process.env.FLUID_LAB_DIR ?? '/var/tmp/fluid-lab';

export async function requireLab(): Promise<Lab> {
  const file = `${LAB_DIR}/lab.json`;
  if (!existsSync(file)) {
    throw new Error(`The lab is not set up (${file} is missing). Run \`npm run lab\` (as root) first.`);
  }
  const lab = JSON.parse(readFileSync(file, 'utf8')) as Lab;
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: lab.sshHost, port: lab.sshPort });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('error', (e) =>
      reject(
        new Error(
          `The lab host's sshd at ${lab.sshHost}:${lab.sshPort} is not answering (${e.message}). Run \`npm run lab\` to bring the lab up.`,
        ),
      ),
    );
  });
  return lab;
}

/** `hosts.add` input for the lab's host, pinned to the host key the lab recorded. */
export function labHost(lab: Lab, name = 'lab') {
  return {
    name,
    address: lab.sshHost,
    port: lab.sshPort,
    user: lab.sshUser,
    auth: { type: 'key' as const, keyPath: lab.keyPath },
    acceptFingerprint: lab.hostKeyFingerprint,
    libvirtUri: lab.libvirtUri,
  };
}
