/**
 * CI runs the README's test command and nothing else: `.ci/run` may set CI-only variables and run
 * `npm test`, so it can never install (or skip) something that `npm test` on a user's machine would
 * not. Checked on the parsed script (tree-sitter-bash), against an allowlist of commands.
 * Also: the Debian package list that `npm test`, `npm start` and the lab share is well-formed, and no
 * script installs packages on its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadBashParser, type SNode } from '../../../src/core/policy/ast.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/** Variables .ci/run may set: they change how output looks or how apt asks, never what is set up. */
const CI_VARIABLES = new Set(['DEBIAN_FRONTEND', 'CI', 'NO_COLOR', 'FORCE_COLOR', 'TERM', 'LANG', 'LC_ALL']);
/** Commands .ci/run may run besides `npm test` (and `exec npm test`). */
const HARMLESS = new Set(['set', 'cd', 'dirname']);
/** Shell syntax that only spells words and the commands above. */
const PLAIN_NODES = new Set([
  'program',
  'comment',
  'command',
  'command_name',
  'declaration_command',
  'export',
  'variable_assignment',
  'variable_name',
  'word',
  'string',
  'raw_string',
  'string_content',
  'simple_expansion',
  'command_substitution',
  'number',
  '"',
  '$',
  '$(',
  ')',
  '=',
]);

/** The command lines of a script: name and arguments, null for a word that is not a plain literal. */
function commandsOf(source: string, root: SNode): { words: (string | null)[]; text: string }[] {
  const text = (n: SNode) => source.slice(n.start, n.end);
  const literal = (n: SNode): string | null => {
    if (n.type === 'command_name') return n.children.length === 1 ? literal(n.children[0]!) : null;
    if (n.type === 'word') return text(n);
    if (n.type === 'raw_string') return text(n).slice(1, -1);
    if (n.type === 'string' && n.children.every((g) => g.type === '"' || g.type === 'string_content'))
      return text(n).slice(1, -1);
    return null;
  };
  const out: { words: (string | null)[]; text: string }[] = [];
  const visit = (n: SNode) => {
    if (n.type === 'command')
      out.push({
        words: n.children.filter((c) => c.field === 'name' || c.field === 'argument').map(literal),
        text: text(n),
      });
    n.children.forEach(visit);
  };
  visit(root);
  return out;
}

async function ciRunProblems(source: string): Promise<string[]> {
  const parser = await loadBashParser();
  const { root, hasError } = parser.parse(source);
  const text = (n: SNode) => source.slice(n.start, n.end);
  const problems: string[] = [];
  if (hasError) problems.push('the script does not parse');
  const visit = (n: SNode) => {
    if (!PLAIN_NODES.has(n.type)) problems.push(`${n.type} is not allowed: ${JSON.stringify(text(n))}`);
    if (n.type === 'variable_assignment') {
      const name = n.children.find((c) => c.field === 'name');
      if (!name || !CI_VARIABLES.has(text(name)))
        problems.push(
          `sets ${name ? text(name) : '?'}, which is not a CI-only variable: ${JSON.stringify(text(n))}`,
        );
    }
    n.children.forEach(visit);
  };
  visit(root);
  let npmTest = 0;
  for (const c of commandsOf(source, root)) {
    const [name, ...args] = c.words[0] === 'exec' ? c.words.slice(1) : c.words;
    if (name === 'npm') {
      if (args.length === 1 && args[0] === 'test') npmTest++;
      else problems.push(`runs npm with other arguments than \`test\`: ${JSON.stringify(c.text)}`);
    } else if (name === null || name === undefined || !HARMLESS.has(name)) {
      problems.push(`runs a command other than npm test: ${JSON.stringify(c.text)}`);
    }
  }
  if (npmTest !== 1) problems.push(`runs \`npm test\` ${npmTest} times (once is right)`);
  return problems;
}

test('.ci/run sets CI-only variables and runs `npm test`, nothing else', async () => {
  assert.deepEqual(await ciRunProblems(read('.ci/run')), []);
});

test('the .ci/run check refuses installs, setup and skip switches', async () => {
  // the .ci/run that kept CI green while the README's command failed
  const before = `#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive ELECTRON_SKIP_BINARY_DOWNLOAD=1
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium openssh-server sudo >/dev/null
npm ci --no-audit --no-fund
bash scripts/lab/lab.sh up
npm test
`;
  const found = (await ciRunProblems(before)).join('\n');
  for (const needle of [
    'ELECTRON_SKIP_BINARY_DOWNLOAD',
    'apt-get update',
    'apt-get install',
    'npm ci',
    'lab.sh up',
  ])
    assert.ok(found.includes(needle), `the check misses ${needle}:\n${found}`);

  const refused = [
    'FLUID_SKIP_SETUP=1 npm test',
    'export FLUID_TEST_ONLY=test/unit\nnpm test',
    'npm test\nnpm test',
    'npm run test',
    'npm install && npm test',
    'cd "$(apt-get install -y sudo)"; npm test',
    'eval "apt-get install -y sudo"; npm test',
    'npm test || true',
    'if true; then npm test; fi',
    'sudo() { :; }; npm test',
    'npm "$X"',
    '. scripts/deps.sh; npm test',
    'true; npm test',
    'cat <<EOF | bash\napt-get install sudo\nEOF\nnpm test',
    '$CMD; npm test',
    '',
  ];
  for (const script of refused)
    assert.notDeepEqual(await ciRunProblems(script), [], `accepted: ${JSON.stringify(script)}`);
  assert.deepEqual(await ciRunProblems('export CI=1 DEBIAN_FRONTEND=noninteractive\nexec npm test\n'), []);
});

const GROUPS = new Set(['lab', 'unit', 'integration', 'e2e']);

test('the shared Debian package list is well-formed', () => {
  const seen = new Set<string>();
  const lines = read('scripts/debian-packages.txt')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  assert.ok(lines.length > 10);
  for (const line of lines) {
    const [pkg, probe, groups, ...why] = line.split(/\s+/);
    assert.match(pkg!, /^[a-z0-9][a-z0-9+.-]+$/, `package name in: ${line}`);
    assert.ok(!seen.has(pkg!), `${pkg} is listed twice`);
    seen.add(pkg!);
    assert.ok(
      probe === '-' || /^[\w.+-]+$|^\/\S+$/.test(probe!),
      `probe of ${pkg}: a command, an absolute path or -`,
    );
    for (const g of groups!.split(','))
      assert.ok(GROUPS.has(g), `${pkg}: unknown group ${g} (one of ${[...GROUPS].join(', ')})`);
    assert.ok(why.length > 0, `${pkg}: say why it is needed`);
  }
  // what the test suites and the reviewers rely on
  for (const pkg of ['sudo', 'chromium', 'openssh-server', 'fuse3', 'qemu-system-common', 'ansible-lint'])
    assert.ok(seen.has(pkg), `${pkg} is missing from the list`);
});

test('no script installs packages except through scripts/deps.sh', async () => {
  const parser = await loadBashParser();
  const files = (dir: string): string[] =>
    readdirSync(join(ROOT, dir)).flatMap((f) => {
      const p = join(dir, f);
      return statSync(join(ROOT, p)).isDirectory() ? files(p) : [p];
    });
  const scripts: [string, string][] = [
    ...[...files('scripts'), '.ci/run']
      .filter((f) => f.endsWith('.sh') || f === '.ci/run')
      // build-image.sh installs into the guest image it builds, not on this machine
      .filter((f) => f !== 'scripts/deps.sh' && f !== 'scripts/lab/build-image.sh')
      .map((f): [string, string] => [f, read(f)]),
    ...Object.entries(JSON.parse(read('package.json')).scripts as Record<string, string>).map(
      ([name, body]): [string, string] => [`package.json scripts.${name}`, body],
    ),
  ];
  const installs = (w: (string | null)[]) => {
    const [name, ...args] = w;
    if (name === 'apt-get' || name === 'apt' || name === 'aptitude') return args.includes('install');
    if (name === 'dpkg') return args.some((a) => a === '-i' || a === '--install');
    if (name === 'npm')
      return ['ci', 'install', 'i', 'add'].includes(args.find((a) => !a?.startsWith('-')) ?? '');
    return false;
  };
  const offenders = scripts.flatMap(([where, source]) =>
    commandsOf(source, parser.parse(source).root)
      .filter((c) => installs(c.words))
      .map((c) => `${where}: ${c.text}`),
  );
  assert.deepEqual(offenders, []);
  // and the check sees an install when there is one
  const sample = 'if true; then DEBIAN_FRONTEND=noninteractive apt-get install -y sudo; fi; echo "npm ci"';
  assert.equal(commandsOf(sample, parser.parse(sample).root).filter((c) => installs(c.words)).length, 1);
});
