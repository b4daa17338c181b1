/**
 * Export: a revision as a self-contained folder a person can read, check and run with their own
 * Ansible:
 *
 *   playbook.yml            the revision's exact bytes
 *   files/…, templates/…    the files it ships, exact bytes
 *   vars/secrets.yml        the variables to fill in (no values), or, when the person gives a vault
 *                           password, an ansible-vault file with the values Fluid holds
 *   inventory.example.ini   an example inventory
 *   VERIFICATION.md, verification.json   the latest verification of this revision (or why none)
 *   MANIFEST.sha256         `sha256sum -c MANIFEST.sha256` checks the files; `sha256sum
 *                           MANIFEST.sha256` prints the revision's sha256
 *   README.md               what is here and how to run it
 *
 * Every path comes from the revision's BundlePaths or is fixed here, so nothing can land outside
 * the folder it is written to.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  revisionManifest,
  type ExportFile,
  type SecretVar,
  type ShippedFile,
  type Verification,
} from '../../shared/contract/playbooks.ts';
import { FluidError } from '../../shared/errors.ts';
import { detectAnsible, INSTALL_ADVICE } from './ansible.ts';
import { secretsTemplate, secretsYaml } from './secrets.ts';

export interface ExportInput {
  name: string;
  number: number;
  sha256: string;
  yaml: string;
  yamlSha256: string;
  files: ReadonlyMap<string, Buffer>;
  shipped: readonly ShippedFile[];
  secrets: readonly SecretVar[];
  verification: Verification | null;
  /** Values for an ansible-vault file (only with a vault password). */
  vault: { password: string; values: ReadonlyMap<string, string> } | null;
}

const utf8 = (path: string, content: string, mode = '0644'): ExportFile => ({
  path,
  encoding: 'utf8',
  content,
  mode,
});

export async function exportRevision(x: ExportInput): Promise<ExportFile[]> {
  const out: ExportFile[] = [utf8('playbook.yml', x.yaml)];
  for (const f of x.shipped) {
    const b = x.files.get(f.path)!;
    out.push(
      f.text
        ? utf8(f.path, b.toString('utf8'))
        : { path: f.path, encoding: 'base64', content: b.toString('base64'), mode: '0644' },
    );
  }
  if (x.secrets.length) {
    if (x.vault) {
      const missing = x.secrets.filter((s) => !x.vault!.values.has(s.name));
      if (missing.length)
        throw new FluidError(
          'CONFLICT',
          `Fluid does not hold the values of ${missing.map((m) => m.name).join(', ')}; export without a vault password and fill them in.`,
        );
      out.push(
        utf8('vars/secrets.yml', await vaultEncrypt(secretsYaml(x.vault.values), x.vault.password), '0600'),
      );
    } else out.push(utf8('vars/secrets.yml', secretsTemplate(x.secrets), '0600'));
  }
  out.push(
    utf8(
      'inventory.example.ini',
      [
        '# An example inventory: copy it to inventory.ini and list the machines this change is for.',
        '# The play targets "all"; Ansible logs in as ansible_user and becomes root with sudo.',
        '[production]',
        'web-01.example.com ansible_user=deploy',
        '',
      ].join('\n'),
    ),
  );
  out.push(utf8('VERIFICATION.md', verificationReport(x)));
  out.push(utf8('verification.json', JSON.stringify(x.verification, null, 2) + '\n'));
  out.push(utf8('MANIFEST.sha256', revisionManifest(x.yamlSha256, x.shipped)));
  out.push(utf8('README.md', readme(x)));
  return out;
}

function readme(x: ExportInput): string {
  return [
    `# ${x.name}, revision ${x.number}`,
    '',
    `Revision sha256: \`${x.sha256}\``,
    '',
    '- `playbook.yml`: the playbook, exactly as reviewed.',
    x.shipped.length ? '- `files/`, `templates/`: the files it ships, exactly as reviewed.' : null,
    x.secrets.length
      ? x.vault
        ? '- `vars/secrets.yml`: the secret values, encrypted with ansible-vault (the password you gave).'
        : '- `vars/secrets.yml`: the secrets to fill in before running (then `ansible-vault encrypt vars/secrets.yml`).'
      : null,
    '- `inventory.example.ini`: an example inventory.',
    '- `VERIFICATION.md`, `verification.json`: how this revision was verified.',
    '',
    'Check that these are the reviewed bytes:',
    '',
    '```sh',
    'sha256sum -c MANIFEST.sha256          # every file matches',
    `sha256sum MANIFEST.sha256             # prints ${x.sha256}`,
    '```',
    '',
    'Run it:',
    '',
    '```sh',
    `ansible-playbook -i inventory.ini playbook.yml${x.secrets.length ? ' --ask-vault-pass' : ''}`,
    '```',
    '',
  ]
    .filter((l) => l !== null)
    .join('\n');
}

function verificationReport(x: ExportInput): string {
  const v = x.verification;
  if (!v) return `# Verification\n\nRevision ${x.number} has not been verified.\n`;
  const lines = [
    '# Verification',
    '',
    `Revision ${v.revision} (sha256 \`${v.sha256}\`): **${v.status}**${v.sha256 !== x.sha256 ? ' — about another revision (stale)' : ''}, ${v.startedAt}.`,
    `ansible-core ${v.tools.ansibleCore ?? '?'}, ansible-lint ${v.tools.ansibleLint ?? '?'}.`,
    v.replay
      ? `Replayed on sandbox ${v.replay.sandboxName ?? v.replay.sandboxId} (base ${v.replay.baseFingerprint ?? '?'}, ${v.replay.startPath ?? '?'}; ${v.replay.destroyed ? 'destroyed afterwards' : 'NOT destroyed'}).`
      : '',
    '',
    '| step | status | time | summary |',
    '|---|---|---|---|',
    ...v.steps.map(
      (s) =>
        `| ${s.title} | ${s.status} | ${s.durationMs === null ? '-' : `${(s.durationMs / 1000).toFixed(1)} s`} | ${s.summary.replace(/\|/g, '\\|')} |`,
    ),
    '',
  ];
  for (const s of v.steps) {
    if (!s.log) continue;
    lines.push(
      `## ${s.title}`,
      '',
      ...s.warnings.map((w) => `- warning: ${w}`),
      '',
      '```',
      s.log.length > 20000 ? s.log.slice(-20000) : s.log,
      '```',
      '',
    );
  }
  return lines.join('\n');
}

/** ansible-vault encrypt, with the password in a 0600 file of a private directory (never in argv). */
async function vaultEncrypt(plain: string, password: string): Promise<string> {
  const tools = await detectAnsible();
  if (!tools.playbook)
    throw new FluidError('UNAVAILABLE', `ansible-vault is not installed on this machine. ${INSTALL_ADVICE}`);
  const vault = tools.playbook.replace(/ansible-playbook$/, 'ansible-vault');
  const dir = mkdtempSync(join(tmpdir(), 'fluid-vault-'));
  chmodSync(dir, 0o700);
  try {
    writeFileSync(join(dir, 'pw'), password, { mode: 0o600 });
    writeFileSync(join(dir, 'secrets.yml'), plain, { mode: 0o600 });
    await new Promise<void>((resolve, reject) => {
      const p = spawn(
        vault,
        ['encrypt', '--vault-password-file', join(dir, 'pw'), join(dir, 'secrets.yml')],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            LANG: 'C.UTF-8',
            ANSIBLE_CONFIG: join(dir, 'none.cfg'),
          },
        },
      );
      let err = '';
      p.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      p.on('error', (e) =>
        reject(new FluidError('UNAVAILABLE', `ansible-vault could not be started: ${e.message}`)),
      );
      p.on('close', (code) =>
        code === 0
          ? resolve()
          : reject(new FluidError('INTERNAL', `ansible-vault encrypt failed: ${err.trim().slice(-500)}`)),
      );
    });
    const out = readFileSync(join(dir, 'secrets.yml'), 'utf8');
    if (!out.startsWith('$ANSIBLE_VAULT;'))
      throw new FluidError('INTERNAL', 'ansible-vault did not encrypt the secrets file.');
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
