/**
 * Syntax highlighting for the lines of a text diff (highlight.js core with the languages that
 * configuration files are written in). Each line is highlighted on its own: a diff shows fragments,
 * and a wrong guess must never hide a character. highlight.js escapes the text it returns.
 */
import hljs from 'highlight.js/lib/core';
import apache from 'highlight.js/lib/languages/apache';
import bash from 'highlight.js/lib/languages/bash';
import ini from 'highlight.js/lib/languages/ini';
import json from 'highlight.js/lib/languages/json';
import nginx from 'highlight.js/lib/languages/nginx';
import perl from 'highlight.js/lib/languages/perl';
import properties from 'highlight.js/lib/languages/properties';
import python from 'highlight.js/lib/languages/python';
import sql from 'highlight.js/lib/languages/sql';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

for (const [name, lang] of Object.entries({
  apache,
  bash,
  ini,
  json,
  nginx,
  perl,
  properties,
  python,
  sql,
  xml,
  yaml,
}))
  hljs.registerLanguage(name, lang);

/** The language a path's content is most likely written in (null: plain text). */
export function languageOf(path: string): string | null {
  const base = path.split('/').pop() ?? '';
  const ext = /\.([A-Za-z0-9]+)$/.exec(base)?.[1]?.toLowerCase();
  if (/^\/etc\/nginx\//.test(path)) return 'nginx';
  if (/^\/etc\/(apache2|httpd)\//.test(path)) return 'apache';
  if (/^\/etc\/cron\.|^\/var\/spool\/cron\/|^\/etc\/crontab$/.test(path)) return 'bash';
  if (
    /^\/etc\/(profile|bash\.bashrc|environment)$|\/\.(bashrc|profile|bash_profile)$|^\/etc\/default\//.test(
      path,
    )
  )
    return 'bash';
  if (/\/systemd\/|\.(service|timer|socket|mount|target|path)$/.test(path)) return 'ini';
  switch (ext) {
    case 'sh':
    case 'bash':
      return 'bash';
    case 'yml':
    case 'yaml':
      return 'yaml';
    case 'json':
      return 'json';
    case 'py':
      return 'python';
    case 'pl':
    case 'pm':
      return 'perl';
    case 'xml':
    case 'html':
    case 'htm':
    case 'svg':
      return 'xml';
    case 'sql':
      return 'sql';
    case 'properties':
      return 'properties';
    case 'ini':
    case 'cnf':
    case 'cfg':
    case 'conf':
    case 'toml':
    case 'desktop':
    case 'repo':
      return 'ini';
  }
  return null;
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]!);

/** One line of code as HTML (escaped; highlighted when the language is known). */
export function highlightLine(code: string, language: string | null): string {
  if (!language || !code.trim()) return escapeHtml(code);
  try {
    return hljs.highlight(code, { language, ignoreIllegals: true }).value;
  } catch {
    return escapeHtml(code);
  }
}

export interface DiffLine {
  kind: 'add' | 'del' | 'ctx' | 'hunk' | 'note';
  text: string;
  /** Line numbers in the old and the new file (null where the line is not on that side). */
  old: number | null;
  new: number | null;
}

/** Parse a unified diff (the contract's text content) into lines with numbers. */
export function parseUnified(diff: string): DiffLine[] {
  const out: DiffLine[] = [];
  let o = 0;
  let n = 0;
  for (const line of diff.split('\n')) {
    if (line.startsWith('--- ') || line.startsWith('+++ ')) continue;
    const h = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (h) {
      o = Number(h[1]);
      n = Number(h[2]);
      out.push({ kind: 'hunk', text: line, old: null, new: null });
    } else if (line.startsWith('+')) out.push({ kind: 'add', text: line.slice(1), old: null, new: n++ });
    else if (line.startsWith('-')) out.push({ kind: 'del', text: line.slice(1), old: o++, new: null });
    else if (line.startsWith('\\')) out.push({ kind: 'note', text: line.slice(2), old: null, new: null });
    else if (line.startsWith(' ')) out.push({ kind: 'ctx', text: line.slice(1), old: o++, new: n++ });
  }
  return out;
}
