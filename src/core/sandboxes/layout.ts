/**
 * Where Fluid keeps things on a host. Everything lives under <storageDir>/<installation id>/, so two
 * Fluid installations sharing a host never touch each other's files; only the network and its slot
 * registry (<storageDir>/slots) are shared, and those are claimed atomically.
 */
export interface HostLayout {
  root: string;
  bases: string;
  base(id: string): string;
  templates: string;
  template(id: string): string;
  sandboxes: string;
  sandbox(id: string): string;
  bin: string;
}

export function hostLayout(storageDir: string, installation: string): HostLayout {
  const root = `${storageDir.replace(/\/+$/, '')}/${installation}`;
  return {
    root,
    bases: `${root}/bases`,
    base: (id) => `${root}/bases/${id}`,
    templates: `${root}/templates`,
    template: (id) => `${root}/templates/${id}`,
    sandboxes: `${root}/sandboxes`,
    sandbox: (id) => `${root}/sandboxes/${id}`,
    bin: `${storageDir.replace(/\/+$/, '')}/bin`,
  };
}

/** libvirt domain names Fluid uses (short ids keep them readable in virsh list). */
export const sandboxDomainName = (name: string, id: string) => `fluid-${name}-${id.slice(0, 8)}`;
export const templateDomainName = (baseId: string) =>
  `fluid-template-${baseId.slice(0, 8)}-${Date.now().toString(36)}`;
