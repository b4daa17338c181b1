/**
 * Numbered schema migrations. Append only: never edit a migration that has shipped; add the next one.
 */
import { SSH_CA_MIGRATION } from '../ssh/schema.ts';
import { DIFF_MIGRATION } from '../diff/store.ts';
import { PLAYBOOKS_MIGRATION } from '../playbooks/store.ts';
import { TARGETS_MIGRATION } from '../targets/store.ts';
import { CHANGES_MIGRATION } from '../changes/store.ts';
import { API_MIGRATION } from '../tokens/store.ts';
import { RUNS_MIGRATION } from '../sandboxes/runs.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'foundation',
    sql: `
      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        actor_door TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX audit_log_action ON audit_log(action);
      CREATE INDEX audit_log_target ON audit_log(target);
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        target TEXT,
        status TEXT NOT NULL CHECK (status IN ('running','succeeded','failed','cancelled','interrupted')),
        progress REAL,
        message TEXT NOT NULL DEFAULT '',
        cancellable INTEGER NOT NULL DEFAULT 1,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        owner_pid INTEGER NOT NULL,
        owner_instance TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT,
        result TEXT,
        error TEXT
      );
      CREATE INDEX tasks_status ON tasks(status);
      CREATE INDEX tasks_created ON tasks(created_at);

      CREATE TABLE hosts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('local','ssh')),
        address TEXT NOT NULL,
        port INTEGER NOT NULL,
        user TEXT NOT NULL,
        auth TEXT NOT NULL,
        host_key_type TEXT,
        host_key_fp TEXT,
        libvirt_uri TEXT NOT NULL,
        storage_dir TEXT,
        created_at TEXT NOT NULL,
        last_check TEXT
      );
    `,
  },
  {
    version: 2,
    name: 'sandboxes-and-approvals',
    sql: `
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

      CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        detail TEXT NOT NULL,
        risk TEXT NOT NULL CHECK (risk IN ('low','medium','high')),
        subject TEXT NOT NULL,
        subject_hash TEXT NOT NULL,
        requested_by_door TEXT NOT NULL,
        requested_by_id TEXT NOT NULL,
        sandbox_id TEXT,
        session_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending','approved','denied','expired','cancelled')),
        decided_by_door TEXT,
        decided_by_id TEXT,
        decided_at TEXT,
        note TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT
      );
      CREATE INDEX approvals_status ON approvals(status);
      CREATE INDEX approvals_sandbox ON approvals(sandbox_id);

      CREATE TABLE bases (
        id TEXT PRIMARY KEY,
        host_id TEXT NOT NULL,
        source_name TEXT NOT NULL,
        source_uuid TEXT NOT NULL,
        fingerprint TEXT NOT NULL DEFAULT '',
        method TEXT NOT NULL CHECK (method IN ('copy','backup')),
        state TEXT NOT NULL CHECK (state IN ('building','ready','failed','retired')),
        dir TEXT NOT NULL,
        disks TEXT NOT NULL DEFAULT '[]',
        source_xml TEXT NOT NULL,
        size_bytes INTEGER,
        template_state TEXT NOT NULL DEFAULT 'none' CHECK (template_state IN ('none','building','ready','failed')),
        template_error TEXT,
        template TEXT,
        error TEXT,
        owner_pid INTEGER,
        owner_instance TEXT,
        created_at TEXT NOT NULL
      );
      CREATE INDEX bases_source ON bases(host_id, source_uuid, state);

      CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        host_id TEXT NOT NULL,
        source_name TEXT NOT NULL,
        base_id TEXT,
        state TEXT NOT NULL,
        domain_name TEXT NOT NULL,
        domain_uuid TEXT NOT NULL,
        dir TEXT NOT NULL,
        vcpus INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        slot INTEGER,
        ip TEXT,
        mac TEXT,
        ttl_minutes INTEGER,
        expires_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        created_by_door TEXT NOT NULL,
        created_by_id TEXT NOT NULL,
        start_path TEXT,
        start_path_reason TEXT,
        timings TEXT NOT NULL DEFAULT '{}',
        host_key_fp TEXT,
        egress_allow TEXT NOT NULL DEFAULT '[]',
        error TEXT,
        task_id TEXT,
        owner_pid INTEGER,
        owner_instance TEXT
      );
      CREATE UNIQUE INDEX sandboxes_live_name ON sandboxes(name) WHERE state != 'destroyed';
      CREATE INDEX sandboxes_host ON sandboxes(host_id, state);

      CREATE TABLE snapshots (
        id TEXT PRIMARY KEY,
        sandbox_id TEXT NOT NULL REFERENCES sandboxes(id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        created_by_door TEXT NOT NULL,
        created_by_id TEXT NOT NULL,
        UNIQUE (sandbox_id, name)
      );
    `,
  },
  { version: 3, ...SSH_CA_MIGRATION },
  {
    version: 4,
    name: 'agent-and-playbooks',
    sql: `
      CREATE TABLE providers (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('anthropic','openai')),
        label TEXT NOT NULL,
        base_url TEXT,
        model TEXT NOT NULL,
        context_tokens INTEGER NOT NULL,
        input_per_mtok REAL NOT NULL DEFAULT 0,
        output_per_mtok REAL NOT NULL DEFAULT 0,
        is_default INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE agent_sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('idle','running','waiting-approval','stopped','failed','done')),
        mode TEXT NOT NULL CHECK (mode IN ('edit','read-only')),
        provider_id TEXT NOT NULL,
        model TEXT NOT NULL,
        host TEXT,
        source TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        -- Input tokens of the last model request, and the characters of the context it carried:
        -- together they estimate the next request's size (compaction).
        context_tokens INTEGER NOT NULL DEFAULT 0,
        context_chars INTEGER NOT NULL DEFAULT 0,
        steps INTEGER NOT NULL DEFAULT 0,
        max_steps INTEGER NOT NULL,
        max_cost_usd REAL NOT NULL,
        last_error TEXT,
        -- The compaction summary standing in, for the model, for messages with seq <= compacted_through.
        summary TEXT,
        compacted_through INTEGER NOT NULL DEFAULT 0,
        -- Stable redaction placeholders: salted sha256 of a secret value -> "kind#n". No secret values.
        redactions TEXT NOT NULL DEFAULT '{}',
        -- Set by agent.stop from another process; the owner polls it.
        stop_requested INTEGER NOT NULL DEFAULT 0,
        owner_pid INTEGER,
        owner_instance TEXT,
        created_by_door TEXT NOT NULL,
        created_by_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX agent_sessions_created ON agent_sessions(created_at);
      CREATE INDEX agent_sessions_status ON agent_sessions(status);

      -- The transcript as the model saw it (secrets already redacted), in provider-neutral blocks.
      CREATE TABLE agent_messages (
        session_id TEXT NOT NULL REFERENCES agent_sessions(id),
        seq INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user','assistant')),
        content TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
      );

      -- Raw tool outputs (unredacted, uncut) behind the handles in the transcript. Only here, in the
      -- owner-only (0600) database: never sent to a model as is.
      CREATE TABLE agent_outputs (
        handle TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES agent_sessions(id),
        tool_use_id TEXT NOT NULL,
        tool_name TEXT NOT NULL DEFAULT '',
        content TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX agent_outputs_session ON agent_outputs(session_id);

      CREATE TABLE playbooks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        hosts TEXT NOT NULL DEFAULT 'all',
        become INTEGER NOT NULL DEFAULT 1,
        session_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE playbook_tasks (
        id TEXT PRIMARY KEY,
        playbook_id TEXT NOT NULL REFERENCES playbooks(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        module TEXT NOT NULL,
        params TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX playbook_tasks_playbook ON playbook_tasks(playbook_id, position);
    `,
  },
  {
    version: 5,
    name: 'event-feed',
    sql: `
      -- Events crossing processes that share this database (the CLI and a running app or web mode).
      CREATE TABLE event_feed (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        origin TEXT NOT NULL,
        ts INTEGER NOT NULL
      );
    `,
  },
  {
    version: 6,
    name: 'presence-credentials',
    sql: `
      -- Passkeys and security keys a person enrolled: high-risk decisions need one of them (WebAuthn).
      CREATE TABLE presence_credentials (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL,
        counter INTEGER NOT NULL DEFAULT 0,
        transports TEXT NOT NULL DEFAULT '[]',
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT
      );
      -- How the decider proved presence (webauthn, confirm, terminal, unattended; door when none was needed).
      ALTER TABLE approvals ADD COLUMN decided_via TEXT;
    `,
  },
  {
    version: 7,
    name: 'audit-checkpoints',
    sql: `
      -- Signed checkpoints of the audit chain (ed25519 over log id, number, entry count, head, time).
      CREATE TABLE audit_checkpoints (
        n INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL,
        head TEXT NOT NULL,
        ts TEXT NOT NULL,
        key TEXT NOT NULL,
        sig TEXT NOT NULL
      );
      CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
      CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
      -- What each host's copy of the checkpoints has confirmed (the rest is pending).
      CREATE TABLE audit_witnesses (
        host_id TEXT PRIMARY KEY,
        delivered INTEGER NOT NULL DEFAULT 0,
        delivered_at TEXT,
        attempted_at TEXT,
        error TEXT
      );
      -- A log written before checkpoints existed is checkpointed once, as it is, at the next start.
      INSERT INTO meta (key, value) SELECT 'audit.adopt', '1' WHERE EXISTS (SELECT 1 FROM audit_log);
    `,
  },
  {
    version: 8,
    name: 'provider-prices',
    sql: `
      -- Whether a person set the provider's prices; otherwise Fluid's model table prices the model, or
      -- nothing does and sessions refuse to start (a cost cap without a price caps nothing). Prices
      -- stored before this were a person's or the table's; zero was "unknown" and stays so.
      ALTER TABLE providers ADD COLUMN price_set INTEGER NOT NULL DEFAULT 0;
      UPDATE providers SET price_set = 1 WHERE input_per_mtok > 0 OR output_per_mtok > 0;
    `,
  },
  { version: 9, ...DIFF_MIGRATION },
  { version: 10, ...PLAYBOOKS_MIGRATION },
  { version: 11, ...TARGETS_MIGRATION },
  { version: 12, ...CHANGES_MIGRATION },
  { version: 13, ...API_MIGRATION },
  { version: 14, ...RUNS_MIGRATION },
];
