/**
 * Which Monarch grammar fits a file (pure: no Monaco here, so it is unit-tested on its own). JSON has
 * no Monarch grammar of its own in Monaco; JavaScript's reads it well. nginx and sshd configuration
 * read best as shell (words, strings, # comments).
 */

const BY_EXT: Record<string, string> = {
  sh: 'shell',
  bash: 'shell',
  zsh: 'shell',
  ksh: 'shell',
  env: 'shell',
  ini: 'ini',
  cfg: 'ini',
  cnf: 'ini',
  conf: 'ini',
  toml: 'ini',
  properties: 'ini',
  service: 'ini',
  socket: 'ini',
  timer: 'ini',
  mount: 'ini',
  target: 'ini',
  path: 'ini',
  network: 'ini',
  netdev: 'ini',
  link: 'ini',
  desktop: 'ini',
  repo: 'ini',
  yml: 'yaml',
  yaml: 'yaml',
  json: 'javascript',
  py: 'python',
  pl: 'perl',
  pm: 'perl',
  rb: 'ruby',
  xml: 'xml',
  svg: 'xml',
  xsl: 'xml',
  plist: 'xml',
  html: 'html',
  htm: 'html',
  css: 'css',
  md: 'markdown',
  markdown: 'markdown',
  sql: 'sql',
  js: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
  ts: 'typescript',
  go: 'go',
  rs: 'rust',
  lua: 'lua',
  php: 'php',
  tf: 'hcl',
  hcl: 'hcl',
  c: 'cpp',
  h: 'cpp',
  cc: 'cpp',
  cpp: 'cpp',
  hpp: 'cpp',
};

const BY_NAME: Record<string, string> = {
  dockerfile: 'dockerfile',
  containerfile: 'dockerfile',
  '.bashrc': 'shell',
  '.bash_profile': 'shell',
  '.profile': 'shell',
  '.zshrc': 'shell',
  bashrc: 'shell',
  profile: 'shell',
  environment: 'shell',
  sshd_config: 'shell',
  ssh_config: 'shell',
  'nginx.conf': 'shell',
  'sysctl.conf': 'ini',
  'my.cnf': 'ini',
  crontab: 'shell',
  makefile: 'shell',
};

const SHEBANG: Array<[RegExp, string]> = [
  [/^#!.*\b(ba|da|k|z)?sh\b/, 'shell'],
  [/^#!.*\bpython[0-9.]*\b/, 'python'],
  [/^#!.*\bperl\b/, 'perl'],
  [/^#!.*\bruby\b/, 'ruby'],
  [/^#!.*\bnode\b/, 'javascript'],
  [/^#!.*\bphp\b/, 'php'],
];

/** The Monaco language id for a file; 'plaintext' when nothing fits. */
export function languageFor(path: string, firstLine = ''): string {
  const name = path.split('/').pop() ?? '';
  const lower = name.toLowerCase();
  const dir = path.slice(0, path.length - name.length);
  if (firstLine.startsWith('#!')) for (const [re, id] of SHEBANG) if (re.test(firstLine)) return id;
  if (BY_NAME[lower]) return BY_NAME[lower];
  if (/(^|\/)nginx\//.test(dir) || /\/etc\/ssh\//.test(dir)) return 'shell';
  if (/\/etc\/(default|profile\.d|init\.d|cron\.[a-z]+)\/$/.test(dir)) return 'shell';
  if (/\/systemd\/.*\/$/.test(dir) && !lower.includes('.')) return 'ini';
  const dot = lower.lastIndexOf('.');
  const ext = dot >= 0 ? lower.slice(dot + 1) : '';
  if (BY_EXT[ext]) return BY_EXT[ext];
  if (lower.endsWith('rc') && lower.startsWith('.')) return 'shell';
  return 'plaintext';
}

export const LANGUAGE_LABEL: Record<string, string> = {
  shell: 'Shell',
  ini: 'INI / config',
  yaml: 'YAML',
  python: 'Python',
  perl: 'Perl',
  ruby: 'Ruby',
  xml: 'XML',
  html: 'HTML',
  css: 'CSS',
  markdown: 'Markdown',
  dockerfile: 'Dockerfile',
  sql: 'SQL',
  javascript: 'JavaScript / JSON',
  typescript: 'TypeScript',
  go: 'Go',
  rust: 'Rust',
  lua: 'Lua',
  php: 'PHP',
  hcl: 'HCL',
  cpp: 'C / C++',
  plaintext: 'Plain text',
};
