/**
 * The SSH CA's table: one row per issued certificate. The row id is the certificate serial, so
 * serials are unique and never reused (AUTOINCREMENT), and every certificate a guest ever saw can be
 * traced to its purpose and sandbox.
 */
export const SSH_CA_MIGRATION = {
  name: 'ssh-ca',
  sql: `
    CREATE TABLE ssh_certificates (
      serial INTEGER PRIMARY KEY AUTOINCREMENT,
      ca_fingerprint TEXT NOT NULL,
      key_fingerprint TEXT NOT NULL,
      key_id TEXT NOT NULL,
      principals TEXT NOT NULL,
      purpose TEXT NOT NULL,
      sandbox_id TEXT,
      source_address TEXT,
      extensions TEXT NOT NULL,
      valid_after INTEGER NOT NULL,
      valid_before INTEGER NOT NULL,
      issued_at TEXT NOT NULL
    );
    CREATE INDEX ssh_certificates_sandbox ON ssh_certificates(sandbox_id);
  `,
} as const;
