/**
 * A diff as text for people (the CLI) and for the agent (the diff_sandbox tool): grouped by kind,
 * counts first, one line per item, text diffs indented below file items, binaries marked.
 */
import {
  KIND_ORDER,
  KIND_TITLE,
  type Diff,
  type DiffItem,
  type FileMeta,
} from '../../shared/contract/diff.ts';

export interface RenderOptions {
  /** Include unified diffs of text files (default true). */
  contents?: boolean;
  /** Cap on lines of each text diff shown (default 200). */
  maxDiffLines?: number;
  color?: boolean;
}

const side = (d: Diff['from']) => (d.kind === 'snapshot' ? `snapshot ${d.name}` : d.kind);

export function renderDiff(d: Diff, opts: RenderOptions = {}): string {
  const c = colors(!!opts.color);
  const excluded = new Set(d.excluded);
  const out: string[] = [];
  out.push(
    `${c.bold(`Changes ${side(d.from)} → ${side(d.to)}`)}: ${d.counts.items} item${d.counts.items === 1 ? '' : 's'}; ${d.counts.noise} path${d.counts.noise === 1 ? '' : 's'} filtered as noise${
      d.counts.noise
        ? ` (${Object.entries(d.counts.noiseByRule)
            .map(([r, n]) => `${r} ${n}`)
            .join(', ')})`
        : ''
    }.`,
  );
  out.push(
    c.dim(
      `Read on the host (${d.method === 'fast' ? 'blocks written since the baseline' : 'every file compared'}; ${d.consistency.mode}: ${d.consistency.detail}) in ${d.timings.total ?? '?'} ms.`,
    ),
  );
  for (const w of d.warnings) out.push(c.yellow(`warning: ${w}`));
  if (!d.items.length) out.push('', 'No changes.');
  for (const kind of KIND_ORDER) {
    const items = d.items.filter((i) => i.kind === kind);
    if (!items.length) continue;
    out.push('', c.bold(`${KIND_TITLE[kind]} (${items.length})`));
    for (const i of items) {
      const mark = excluded.has(i.id) ? c.dim(' [excluded]') : '';
      out.push(`  ${line(i, c)}${mark}  ${c.dim(i.id)}`);
      if (opts.contents !== false) out.push(...body(i, opts.maxDiffLines ?? 200, c));
    }
  }
  if (d.noise) {
    out.push('', c.bold(`Filtered as noise (${d.noise.length})`));
    for (const n of d.noise) out.push(`  ${c.dim(n.rule.padEnd(16))} ${n.path}`);
  } else if (d.counts.noise) out.push('', c.dim('Show the filtered paths with --show-noise.'));
  return out.join('\n');
}

const sym: Record<string, string> = {
  added: '+',
  installed: '+',
  enabled: '+',
  masked: '+',
  deleted: '-',
  removed: '-',
  disabled: '-',
  unmasked: '-',
  modified: '~',
  upgraded: '~',
  downgraded: '~',
};

function meta(m: FileMeta | null): string {
  if (!m) return '';
  const who = `${m.user ?? m.uid}:${m.group ?? m.gid}`;
  return m.type === 'symlink' ? `→ ${m.target}` : `${m.type} ${m.mode} ${who}`;
}

export function line(i: DiffItem, c = colors(false)): string {
  switch (i.kind) {
    case 'package':
      return `${sym[i.change]} ${i.name}${i.arch ? `:${i.arch}` : ''} ${i.change} ${
        i.change === 'installed'
          ? i.after!.version
          : i.change === 'removed'
            ? i.before!.version
            : `${i.before!.version} → ${i.after!.version}`
      }`;
    case 'user':
    case 'group': {
      const what = i.change === 'modified' ? ` (${i.fields.join(', ')})` : '';
      const info =
        i.kind === 'user' && i.after
          ? ` uid ${i.after.uid}, group ${i.after.group ?? i.after.gid}, home ${i.after.home}, shell ${i.after.shell}${i.after.groups.length ? `, groups ${i.after.groups.join(',')}` : ''}${i.passwordChanged ? ', password set' : ''}`
          : i.kind === 'group' && i.after
            ? ` gid ${i.after.gid}${i.after.members.length ? `, members ${i.after.members.join(',')}` : ''}`
            : '';
      return `${sym[i.change]} ${i.kind} ${i.name} ${i.change}${what}${info}`;
    }
    case 'unit-state':
      return `${sym[i.change]} ${i.unit} ${i.change}${i.target && i.target !== 'alias' ? ` (${i.target})` : ''}`;
    case 'sysctl':
      return `~ ${i.name} = ${i.after ?? '(unset)'}${i.before !== null ? c.dim(` (was ${i.before})`) : ''}  ${c.dim(i.file)}`;
    case 'kernel-module':
      return `${sym[i.change]} ${i.name} ${i.change}  ${c.dim(i.file)}`;
    default: {
      const asp = i.change === 'modified' && i.aspects.length ? ` (${i.aspects.join(', ')})` : '';
      const label =
        i.kind === 'unit'
          ? `${i.unit}${i.dropIn ? ' drop-in' : ''} `
          : i.kind === 'cron' && i.user
            ? `crontab of ${i.user} `
            : '';
      const m = i.change === 'deleted' ? meta(i.before) : meta(i.after);
      const bin =
        i.content?.kind === 'binary'
          ? c.yellow(' [binary]')
          : i.content?.kind === 'hidden'
            ? c.yellow(' [sensitive]')
            : '';
      const pkg = i.package ? c.dim(` (package ${i.package})`) : '';
      return `${sym[i.change]} ${label}${i.path} ${i.change}${asp}  ${c.dim(m)}${bin}${pkg}`;
    }
  }
}

function body(i: DiffItem, maxLines: number, c: ReturnType<typeof colors>): string[] {
  if (!('content' in i) || !i.content) return [];
  const pad = '      ';
  const ct = i.content;
  if (ct.kind === 'binary')
    return [
      `${pad}${c.dim(`binary: ${ct.sizeBefore} → ${ct.sizeAfter} bytes; sha256 ${i.before?.sha256?.slice(0, 12) ?? '-'} → ${i.after?.sha256?.slice(0, 12) ?? '-'}`)}`,
    ];
  if (ct.kind === 'hidden')
    return [`${pad}${c.dim(`${ct.reason}: ${ct.sizeBefore} → ${ct.sizeAfter} bytes`)}`];
  const lines = ct.diff.split('\n').filter((l, n, all) => l || n < all.length - 1);
  const shown = lines.slice(2, 2 + maxLines); // skip the ---/+++ header: the path is on the item line
  const out = shown.map(
    (l) =>
      pad +
      (l.startsWith('+') ? c.green(l) : l.startsWith('-') ? c.red(l) : l.startsWith('@@') ? c.cyan(l) : l),
  );
  if (lines.length - 2 > maxLines || ct.truncated)
    out.push(
      pad +
        c.dim(
          `… (${ct.added} added, ${ct.removed} removed lines in all${ct.truncated ? '; cut at the size limit' : ''})`,
        ),
    );
  return out;
}

function colors(on: boolean) {
  const w = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: w('1'), dim: w('2'), red: w('31'), green: w('32'), yellow: w('33'), cyan: w('36') };
}
