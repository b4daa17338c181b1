/**
 * libvirt QEMU save images ("virsh save"): a 92-byte header, the domain XML and a cookie, then the
 * QEMU migration stream. `virsh restore --xml` refuses a different UUID, so cloning a saved template
 * rewrites the XML inside the header (name, UUID, genid, disk and log paths) and streams the rest.
 */
export const SAVE_MAGIC = 'LibvirtQemudSave';
export const HEADER_LEN = 92;

export interface SaveHeader {
  version: number;
  dataLen: number;
  wasRunning: number;
  compressed: number;
  cookieOffset: number;
  xml: string;
  cookie: Buffer;
  /** Offset of the QEMU stream in the original file. */
  streamOffset: number;
}

export function parseSaveHeader(head: Buffer): SaveHeader {
  if (head.length < HEADER_LEN || head.subarray(0, 16).toString('latin1') !== SAVE_MAGIC) {
    throw new Error('not an uncompressed libvirt QEMU save image');
  }
  const version = head.readUInt32LE(16);
  const dataLen = head.readUInt32LE(20);
  const wasRunning = head.readUInt32LE(24);
  const compressed = head.readUInt32LE(28);
  const cookieOffset = head.readUInt32LE(32);
  if (version !== 2) throw new Error(`unsupported save image version ${version}`);
  if (compressed !== 0)
    throw new Error('compressed save images are not supported (set save_image_format = "raw")');
  if (head.length < HEADER_LEN + dataLen)
    throw new Error(`need ${HEADER_LEN + dataLen} bytes of header, got ${head.length}`);
  const data = head.subarray(HEADER_LEN, HEADER_LEN + dataLen);
  const xmlEnd = data.indexOf(0);
  const xml = data.subarray(0, xmlEnd < 0 ? data.length : xmlEnd).toString('utf8');
  let cookie = Buffer.alloc(0);
  if (cookieOffset) {
    const end = data.indexOf(0, cookieOffset);
    cookie = Buffer.from(data.subarray(cookieOffset, end < 0 ? data.length : end));
  }
  return {
    version,
    dataLen,
    wasRunning,
    compressed,
    cookieOffset,
    xml,
    cookie,
    streamOffset: HEADER_LEN + dataLen,
  };
}

/** A new header (fixed part + data) for the same QEMU stream with a different domain XML. */
export function buildSaveHeader(h: SaveHeader, xml: string): Buffer {
  const x = Buffer.concat([Buffer.from(xml, 'utf8'), Buffer.from([0])]);
  const c = h.cookieOffset ? Buffer.concat([h.cookie, Buffer.from([0])]) : Buffer.alloc(0);
  const pad = Buffer.alloc(4096); // room for later save-image-define edits, as libvirt leaves
  const data = Buffer.concat([x, c, pad]);
  const fixed = Buffer.alloc(HEADER_LEN);
  fixed.write(SAVE_MAGIC, 0, 'latin1');
  fixed.writeUInt32LE(h.version, 16);
  fixed.writeUInt32LE(data.length, 20);
  fixed.writeUInt32LE(h.wasRunning, 24);
  fixed.writeUInt32LE(h.compressed, 28);
  fixed.writeUInt32LE(h.cookieOffset ? x.length : 0, 32);
  return Buffer.concat([fixed, data]);
}

export interface Rewrite {
  name: string;
  uuid: string;
  genid: string;
  /** Plain replacements: template disk path → overlay path, log paths. */
  replace: Array<[from: string, to: string]>;
}

export function rewriteDomainXml(xml: string, r: Rewrite): string {
  let out = xml
    .replace(/<name>[^<]*<\/name>/, `<name>${r.name}</name>`)
    .replace(/<uuid>[^<]*<\/uuid>/, `<uuid>${r.uuid}</uuid>`);
  if (/<genid>[^<]*<\/genid>/.test(out))
    out = out.replace(/<genid>[^<]*<\/genid>/, `<genid>${r.genid}</genid>`);
  for (const [from, to] of r.replace) out = out.split(from).join(to);
  return out;
}
