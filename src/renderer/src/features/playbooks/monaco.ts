/**
 * Monaco for playbooks, loaded on first use (its own chunk): the editor core with the YAML
 * language, monaco-yaml for validation, completion and hovers against the Ansible playbook JSON
 * schema shipped inside the app (schema/ansible-playbook.schema.json), YAML 1.1 as Ansible reads it,
 * Ansible's !unsafe and !vault tags. The workers are bundled by Vite; nothing is fetched from a CDN
 * and schema requests are off.
 */
import * as monacoApi from 'monaco-editor/esm/vs/editor/edcore.main.js';
import 'monaco-editor/esm/vs/basic-languages/yaml/yaml.contribution.js';
import type * as Monaco from 'monaco-editor';
import { configureMonacoYaml } from 'monaco-yaml';
import EditorWorker from 'monaco-editor/esm/vs/editor/editor.worker.js?worker';
import YamlWorker from './yaml.worker.ts?worker';
import playbookSchema from './schema/ansible-playbook.schema.json';

export type MonacoNamespace = typeof Monaco;
export const monaco = monacoApi as unknown as MonacoNamespace;

/** The model path every playbook editor uses: the schema applies to it. */
export const PLAYBOOK_GLOB = '**/playbook.yml';
export const SCHEMA_URI = 'fluid://schemas/ansible-playbook.json';

(globalThis as { MonacoEnvironment?: unknown }).MonacoEnvironment = {
  getWorker(_moduleId: string, label: string): Worker {
    return label === 'yaml' ? new YamlWorker() : new EditorWorker();
  },
};

configureMonacoYaml(monaco, {
  enableSchemaRequest: false,
  validate: true,
  hover: true,
  completion: true,
  format: { enable: false },
  yamlVersion: '1.1',
  customTags: ['!unsafe scalar', '!vault scalar'],
  schemas: [{ fileMatch: [PLAYBOOK_GLOB], uri: SCHEMA_URI, schema: playbookSchema as object }],
});
