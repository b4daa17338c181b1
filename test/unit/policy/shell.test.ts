import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createShellPolicy, type ShellPolicy } from '../../../src/core/policy/shell.ts';

let policy: ShellPolicy;
before(async () => {
  policy = await createShellPolicy();
});

const allowed = (cmd: string) => {
  const r = policy.check(cmd, 'read-only');
  assert.equal(r.decision, 'allow', `${cmd} → ${r.reason}`);
  return r;
};
const denied = (cmd: string, reason?: RegExp) => {
  const r = policy.check(cmd, 'read-only');
  assert.equal(r.decision, 'deny', `${cmd} should be denied (${r.reason})`);
  if (reason) assert.match(r.reason, reason, `${cmd}: reason ${JSON.stringify(r.reason)}`);
  return r;
};

describe('the must-haves', () => {
  test('ordinary inspection is allowed', () => {
    allowed('cat /etc/os-release | grep ID');
    allowed('systemctl status nginx');
    allowed('journalctl -u nginx --no-pager');
  });

  test('changes, code and writes are denied with a specific reason', () => {
    denied('cat x; rm -rf /', /rm deletes files/);
    denied('ls $(touch y)', /touch changes files/);
    denied('echo a > f', /redirection to f writes a file/);
    denied('find / -delete', /find -delete/);
    denied(`awk 'BEGIN{system("id")}'`, /system\(\)/);
    denied('env rm x', /rm deletes files/);
    denied('sed -i s/a/b/ f', /sed -i edits files in place/);
    denied('tee f', /tee writes/);
    denied(`bash -c 'anything'`, /bash runs code/);
  });
});

describe('the decision object', () => {
  test('lists every simple command with quote removal', () => {
    const r = allowed(`'c''a't /etc/hosts | g\\rep "ID" && echo $'a\\tb'`);
    assert.deepEqual(
      r.commands.map((c) => c.argv),
      [
        ['cat', '/etc/hosts'],
        ['grep', 'ID'],
        ['echo', 'a\tb'],
      ],
    );
    assert.ok(r.commands.every((c) => c.dynamic.every((d) => !d)));
  });

  test('marks computed words and nested commands', () => {
    const r = allowed('ls -l "$HOME" $(uname -r)');
    const ls = r.commands.find((c) => c.argv[0] === 'ls')!;
    assert.deepEqual(ls.dynamic, [false, false, true, true]);
    assert.equal(r.commands.find((c) => c.argv[0] === 'uname')!.nested, true);
  });

  test('reports wrapped commands', () => {
    const r = allowed('timeout 5 cat /etc/hosts');
    assert.deepEqual(
      r.commands.map((c) => [c.argv[0], c.nested]),
      [
        ['timeout', false],
        ['cat', true],
      ],
    );
  });

  test('an unknown mode is denied, never thrown', () => {
    const r = policy.check('ls', 'read-write' as never);
    assert.equal(r.decision, 'deny');
    assert.match(r.reason, /unknown policy mode/);
  });

  test('garbage input is denied, never thrown', () => {
    for (const bad of ['', '   ', 'ls (', '"unterminated', '\u0000', 'a'.repeat(100_000), '('.repeat(5000)]) {
      assert.equal(policy.check(bad).decision, 'deny', JSON.stringify(bad.slice(0, 20)));
    }
  });
});

describe('where tree-sitter-bash and bash disagree', () => {
  test('[ ] operators are shell syntax, not test arguments', () => {
    denied('[ a > b ]', /shell operator/);
    denied('[ a || rm -rf / ]');
    allowed('[ -f /etc/hosts ] && cat /etc/hosts');
  });

  test('a quoted part next to an escaped part is one word', () => {
    denied('sed -n p "-"\\i f', /sed -i/);
    denied(`sort '-'\\o out f`, /sort -o/);
  });

  test('escaped blanks and line continuations between words', () => {
    denied('uniq f \\  -c', /escaped blank/);
    denied('ec\\\nho hi', /line continuation/);
    allowed('ls foo\\ bar');
    allowed('cat /etc/hosts \\\n  /etc/hostname');
  });

  test('heredocs: bodies with substitutions, and ends bash would not see', () => {
    denied('cat <<EOF\n$(rm -rf /)\nEOF', /heredoc/);
    denied('cat <<EOF\n`reboot`\nEOF', /heredoc/);
    denied('cat <<EOF\nx\n EOF\nrm -rf /\nEOF');
    allowed("cat <<'EOF'\n$(rm -rf /)\nEOF");
    allowed('cat <<EOF\nhello $USER\nEOF');
  });

  test('expansions the grammar misses are caught in literal text', () => {
    denied('echo ${x/`rm y`}');
    denied('[[ $x =~ `rm y` ]]');
  });

  test('named file descriptors are redirections', () => {
    denied(`awk {x}>/dev/null 'BEGIN{system("id")}'`);
  });

  test('a # only starts a comment at the start of a word', () => {
    denied('echo x#; rm -rf /', /rm deletes/);
    allowed('echo a ;#; rm x');
  });
});

describe('variables', () => {
  test('contexts that evaluate variable contents as code', () => {
    denied('echo $((x))', /arithmetic/);
    denied('[[ $x -eq 1 ]]', /arithmetic/);
    denied('echo ${!x}', /indirect/);
    denied('echo ${x@P}', /transformations/);
    denied('echo ${a[$i]}', /array index/);
    denied('test -v x', /-v/);
    allowed('echo $((2 + 3))');
    allowed('[ "$(id -u)" -eq 0 ] && echo root');
  });

  test('only lowercase shell variables and formatting environment variables', () => {
    allowed('f=/etc/hostname; cat "$f"');
    allowed('LC_ALL=C sort /etc/passwd');
    allowed('PAGER=cat systemctl status nginx');
    denied('PATH=/tmp:$PATH; ls', /PATH/);
    denied('LD_PRELOAD=/tmp/x.so ls', /LD_PRELOAD/);
    denied('GIT_PAGER="rm x" git log', /GIT_PAGER/);
  });

  test('loop variables over literal words are known', () => {
    allowed('for s in nginx ssh; do systemctl is-active "$s"; done');
    denied('for s in nginx --host=x; do systemctl status "$s"; done');
    denied('for s in a b; do s=--image=x; systemctl status "$s"; done');
  });

  test('computed words cannot become options where options matter', () => {
    denied('sed -n p "$f"', /computed at run time/);
    denied('sort $opts f', /computed at run time/);
    allowed('grep "$USER" /etc/passwd');
    allowed('cat $(ls /etc/*.conf | head -1)');
  });
});

describe('wrappers are unwrapped', () => {
  test('allowed inner commands', () => {
    allowed('timeout 5 cat /etc/hosts');
    allowed('nice -n 10 du -sh /var');
    allowed('env LC_ALL=C sort file');
    allowed('find /etc -name "*.conf" | xargs grep -l listen');
  });

  test('denied inner commands', () => {
    denied('timeout 1 rm x', /rm deletes/);
    denied('nice rm x', /rm deletes/);
    denied('stdbuf -o0 rm x', /rm deletes/);
    denied('xargs rm', /rm deletes/);
    denied('cat list | xargs sed -n p', /computed at run time/);
    denied('env -S "rm x"', /split/);
    denied('nohup ls', /nohup/);
    denied('command rm x', /rm deletes/);
  });
});

describe('programs with dangerous options', () => {
  test('sed scripts', () => {
    allowed(`sed -n '/^server {/,/^}/p' f`);
    allowed(`sed 's/[/]/_/g' f`);
    denied(`sed 's/a/b/w out' f`, /s\/\/\/w/);
    denied(`sed 's/a/b/e' f`, /s\/\/\/e/);
    denied(`sed '1e id' f`, /e command/);
    denied(`sed -ni p f`, /sed -i/);
    denied(`sed --in-pl s/a/b/ f`, /in-place/);
    denied(`sed ':a;w out' f`, /w command/);
  });

  test('awk programs', () => {
    allowed(`awk -F: '$3 >= 1000 {print $1}' /etc/passwd`);
    allowed(`awk '{ print ($3 > 1) ? "big" : "small" }' f`);
    denied(`awk '{print > "out"}' f`, /redirection/);
    denied(`awk '{print | "sh"}' f`, /pipes/);
    denied(`awk '{"date" | getline d}' f`);
    denied(`gawk '@load "x"'`, /@/);
  });

  test('find expressions', () => {
    allowed('find /var/log -type f -mtime -1 -printf "%p %s\\n"');
    denied('find . -exec rm {} \\;', /rm deletes files/);
    allowed('find / -name "*.log" -exec ls -lh {} \\;');
    denied('find . -ok cat {} \\;', /-ok/);
    denied('find . -fprint /tmp/x', /-fprint/);
    denied('find $dir -name x', /computed/);
  });

  test('systemctl and journalctl', () => {
    allowed('systemctl show nginx -p MainPID --value');
    denied('systemctl restart nginx', /changes the service manager/);
    denied('journalctl --vacuum-time=1s', /vacuum/);
    denied('journalctl --vac=1s', /vacuum/);
  });

  test('git', () => {
    allowed('git log --oneline -5');
    allowed('git -c color.ui=never log -3');
    denied('git -c core.pager=less log', /-c/);
    denied('git log --output=/tmp/x', /--output/);
    denied('git diff --ext-diff', /ext-diff/);
    denied('git branch newbranch', /creates a branch/);
    denied('git push', /not a read-only git command/);
  });

  test('openssl s_client only with stdin closed', () => {
    allowed('openssl s_client -connect example.com:443 </dev/null');
    allowed('echo | openssl s_client -connect example.com:443 2>/dev/null | openssl x509 -noout -dates');
    denied('openssl s_client -connect example.com:443', /< \/dev\/null/);
    denied(`printf 'POST /x' | openssl s_client -connect example.com:443`);
  });
});
