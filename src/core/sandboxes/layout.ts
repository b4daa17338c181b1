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

/**
 * libvirt domain names Fluid uses (short ids keep them readable in virsh list): `fluid-<name>-<id8>`,
 * without saying "fluid" twice when the name already starts with it (a sandbox of `fluid-lab-web`
 * is `fluid-lab-web-1a2b3c`) nor the id twice when a generated name already ends with its start.
 * Names are only for people: reconcile recognises Fluid's domains by their metadata label (any
 * name, older ones included).
 */
export function sandboxDomainName(name: string, id: string): string {
  const short = id.slice(0, 8);
  let stem = name.replace(/^fluid-/, '');
  const gen = `-${id.slice(0, 6)}`;
  if (stem.endsWith(gen)) stem = stem.slice(0, -gen.length);
  return stem ? `fluid-${stem}-${short}` : `fluid-${short}`;
}
export const templateDomainName = (baseId: string) =>
  `fluid-template-${baseId.slice(0, 8)}-${Date.now().toString(36)}`;
