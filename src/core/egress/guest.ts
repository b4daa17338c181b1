/**
 * Inside a sandbox (Debian/Ubuntu/RHEL-ish guest): make apt, dnf/yum, curl, wget, pip, sudo, systemd
 * services and plain shells use the Fluid egress proxy. The guest has no other route out.
 *
 * `guestProxySetupScript` is an idempotent POSIX sh script (run as root). Files Fluid owns outright
 * are written whole; shared files (/etc/environment, dnf.conf, yum.conf) get a marked block, and
 * conflicting proxy lines in them are commented out with a marker so the teardown can restore them.
 * `FLUID_GUEST_ROOT=/some/dir` makes either script operate under that directory instead of / (tests).
 */
import { FluidError } from '../../shared/errors.ts';
import { shq } from '../hosts/connection.ts';
import { canonicalIp } from './destinations.ts';

export interface GuestFile {
  path: string;
  content: string;
  mode: number;
  /** Written only when this directory exists in the guest (the tool it configures is installed). */
  onlyIfDir?: string;
}

const MANAGED =
  'Managed by Fluid: this sandbox reaches the outside world only through the Fluid egress proxy.';
export const NO_PROXY = 'localhost,127.0.0.1,::1';
const BLOCK_BEGIN = '# BEGIN fluid-proxy (managed by Fluid; removed when sandbox egress is torn down)';
const BLOCK_END = '# END fluid-proxy';
const DISABLED = '#fluid-disabled# ';

/** Validate a proxy URL and return it as http://host:port (no trailing slash). */
export function normalizeProxyUrl(proxyUrl: string): string {
  let u: URL;
  try {
    u = new URL(proxyUrl);
  } catch {
    throw new FluidError('VALIDATION', `"${proxyUrl}" is not a proxy URL (expected http://host:port).`);
  }
  const bad =
    u.protocol !== 'http:' ||
    u.username ||
    u.password ||
    (u.pathname !== '/' && u.pathname !== '') ||
    u.search ||
    u.hash;
  if (bad)
    throw new FluidError('VALIDATION', `"${proxyUrl}" is not a proxy URL (expected http://host:port).`);
  const host = u.hostname;
  const plain = host.replace(/^\[|\]$/g, '');
  if (!canonicalIp(plain) && !/^[a-z0-9.-]+$/.test(plain))
    throw new FluidError('VALIDATION', `"${proxyUrl}" has an invalid host.`);
  return `http://${host}:${u.port || '80'}`;
}

const ENV_NAMES = ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'] as const;

function envPairs(url: string): Array<[string, string]> {
  return ENV_NAMES.map((n) => [n, n.toLowerCase() === 'no_proxy' ? NO_PROXY : url]);
}

/** Files Fluid owns outright in the guest (the setup script also merges /etc/environment and dnf/yum). */
export function guestProxyFiles(proxyUrl: string): GuestFile[] {
  const url = normalizeProxyUrl(proxyUrl);
  const pairs = envPairs(url);
  return [
    {
      path: '/etc/apt/apt.conf.d/95fluid-proxy',
      mode: 0o644,
      onlyIfDir: '/etc/apt/apt.conf.d',
      content: `// ${MANAGED}\nAcquire::http::Proxy "${url}/";\nAcquire::https::Proxy "${url}/";\n`,
    },
    {
      path: '/etc/profile.d/fluid-proxy.sh',
      mode: 0o644,
      onlyIfDir: '/etc/profile.d',
      content: `# ${MANAGED}\n${pairs.map(([k, v]) => `export ${k}="${v}"`).join('\n')}\n`,
    },
    {
      path: '/etc/sudoers.d/fluid-proxy',
      mode: 0o440,
      onlyIfDir: '/etc/sudoers.d',
      content: `# ${MANAGED}\nDefaults env_keep += "${ENV_NAMES.join(' ')}"\n`,
    },
    {
      path: '/etc/systemd/system.conf.d/95-fluid-proxy.conf',
      mode: 0o644,
      onlyIfDir: '/etc/systemd',
      content: `# ${MANAGED}\n[Manager]\nDefaultEnvironment=${pairs.map(([k, v]) => `"${k}=${v}"`).join(' ')}\n`,
    },
  ];
}

const COMMON = `set -eu
R="\${FLUID_GUEST_ROOT:-}"
BEGIN=${shq(BLOCK_BEGIN)}
END=${shq(BLOCK_END)}
DIS=${shq(DISABLED)}
changed=""

# replace FILE NEWFILE: give FILE the content of NEWFILE, keeping FILE's inode, owner and mode.
replace() {
  if [ -f "$1" ] && command -v cmp >/dev/null 2>&1 && cmp -s "$2" "$1"; then rm -f "$2"; return 0; fi
  cat "$2" > "$1"
  rm -f "$2"
  changed="$changed \${1#"$R"}"
}
`;

/**
 * Idempotent POSIX sh script (run as root in the guest) that points everything at the proxy.
 * Prints what it changed. Exit 0 on success.
 */
export function guestProxySetupScript(proxyUrl: string): string {
  const url = normalizeProxyUrl(proxyUrl);
  const files = guestProxyFiles(url);
  const pairs = envPairs(url);
  const writes = files
    .map((f) => {
      const m = f.mode.toString(8);
      const check = f.path.startsWith('/etc/sudoers.d/')
        ? `  if command -v visudo >/dev/null 2>&1 && ! visudo -cqf "$tmp" >/dev/null 2>&1; then
    echo "fluid-proxy: visudo rejected ${f.path}; not installed" >&2; rm -f "$tmp"
  else
    chmod ${m} "$tmp"; mv -f "$tmp" "$R${f.path}"; changed="$changed ${f.path}"
  fi`
        : `  chmod ${m} "$tmp"; mv -f "$tmp" "$R${f.path}"; changed="$changed ${f.path}"`;
      const dir = f.path.slice(0, f.path.lastIndexOf('/'));
      return `if [ -d "$R${f.onlyIfDir ?? dir}" ]; then
  mkdir -p "$R${dir}"
  tmp="$R${f.path}.fluid-tmp.$$"
  cat > "$tmp" <<'FLUID_EOF'
${f.content}FLUID_EOF
  if [ -f "$R${f.path}" ] && command -v cmp >/dev/null 2>&1 && cmp -s "$tmp" "$R${f.path}"; then rm -f "$tmp"; else
${check}
  fi
fi`;
    })
    .join('\n');
  const envBlock = pairs.map(([k, v]) => `${k}=${v}`).join('\n');
  return `#!/bin/sh
# Fluid: send this sandbox's HTTP(S) traffic through the Fluid egress proxy (${url}).
# Idempotent. Undo with Fluid's teardown script.
${COMMON}
PROXY=${shq(url)}

${writes}

# /etc/environment (pam_env): our block at the end; other proxy lines commented out (restored on teardown).
env="$R/etc/environment"
[ -e "$env" ] || { : > "$env"; chmod 644 "$env"; }
tmp="$env.fluid-tmp.$$"
{
  awk -v b="$BEGIN" -v e="$END" -v dis="$DIS" '
    $0 == b { skip = 1; next }
    skip { if ($0 == e) skip = 0; next }
    { l = tolower($0); sub(/^[ \\t]*(export[ \\t]+)?/, "", l)
      if (l ~ /^(http|https|ftp|all|no)_proxy[ \\t]*=/) print dis $0; else print }' "$env"
  echo "$BEGIN"
  cat <<'FLUID_EOF'
${envBlock}
FLUID_EOF
  echo "$END"
} > "$tmp"
replace "$env" "$tmp"

# dnf / yum: proxy= in [main]; other proxy= lines (any section) commented out. A symlinked yum.conf is dnf.conf.
for f in /etc/dnf/dnf.conf /etc/yum.conf; do
  [ -f "$R$f" ] && [ ! -L "$R$f" ] || continue
  tmp="$R$f.fluid-tmp.$$"
  awk -v b="$BEGIN" -v e="$END" -v dis="$DIS" -v p="$PROXY" '
    function block() { print b; print "proxy=" p; print e; done = 1 }
    $0 == b { skip = 1; next }
    skip { if ($0 == e) skip = 0; next }
    { l = tolower($0); sub(/^[ \\t]+/, "", l) }
    l ~ /^\\[/ { print; if (l ~ /^\\[main\\]/ && !done) block(); next }
    l ~ /^proxy[ \\t]*=/ { print dis $0; next }
    { print }
    END { if (!done) { print "[main]"; block() } }' "$R$f" > "$tmp"
  replace "$R$f" "$tmp"
done

# Services started from now on (the drop-in above covers the next boot).
if [ -z "$R" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl set-environment ${pairs.map(([k, v]) => shq(`${k}=${v}`)).join(' ')} || true
fi

if [ -n "$changed" ]; then echo "fluid-proxy: configured$changed"; else echo "fluid-proxy: already configured"; fi
`;
}

/** Idempotent POSIX sh script that removes everything the setup script added and restores what it disabled. */
export function guestProxyTeardownScript(): string {
  const files = guestProxyFiles('http://127.0.0.1:1').map((f) => f.path);
  return `#!/bin/sh
# Fluid: stop routing this sandbox's traffic through the Fluid egress proxy. Idempotent.
${COMMON}
for f in ${files.join(' ')}; do
  if [ -e "$R$f" ]; then rm -f "$R$f"; changed="$changed $f"; fi
done
rmdir "$R/etc/systemd/system.conf.d" 2>/dev/null || true

for f in /etc/environment /etc/dnf/dnf.conf /etc/yum.conf; do
  [ -f "$R$f" ] && [ ! -L "$R$f" ] || continue
  tmp="$R$f.fluid-tmp.$$"
  awk -v b="$BEGIN" -v e="$END" -v dis="$DIS" '
    $0 == b { skip = 1; next }
    skip { if ($0 == e) skip = 0; next }
    index($0, dis) == 1 { print substr($0, length(dis) + 1); next }
    { print }' "$R$f" > "$tmp"
  replace "$R$f" "$tmp"
done

if [ -z "$R" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl unset-environment ${ENV_NAMES.join(' ')} || true
fi

if [ -n "$changed" ]; then echo "fluid-proxy: removed from$changed"; else echo "fluid-proxy: nothing to remove"; fi
`;
}
