import { crc32 } from 'node:zlib';
import { InvalidInputError, UsageError } from '../../errors.ts';
import type { RandomAccessSource } from '../source.ts';

/** One partition, numbered and typed the way sfdisk reports it. */
export interface Partition {
  /** 1-based: MBR primaries by slot (1–4), logicals from 5 in chain order; GPT by entry slot. */
  index: number;
  /** First sector and length in sectors of `sectorSize` bytes. */
  start: number;
  size: number;
  sectorSize: number;
  /** MBR: two hex digits ("83", "c"); GPT: the type GUID in upper case. */
  type: string;
  /** GPT partition name (UTF-16 in the entry); empty for MBR. */
  name: string;
  /** GPT unique partition GUID. */
  uuid?: string;
  /** An MBR extended partition: a container of logical partitions, never a filesystem. */
  extended?: boolean;
}

export type TableKind = 'mbr' | 'gpt';

const SECTOR = 512;
const MBR_EXTENDED = new Set([0x05, 0x0f, 0x85]);
const MAX_LOGICAL = 256;
const MAX_GPT_ENTRIES_BYTES = 1 << 20;

function invalid(src: RandomAccessSource, what: string): InvalidInputError {
  return new InvalidInputError('partition-table', `${what}; inspect the disk with 'sfdisk -d'`, { file: src.name });
}

/** The MBR boot signature plus at least one plausible entry (status 0 or 0x80, non-empty type). */
function mbrEntries(sector: Buffer): { status: number; type: number; start: number; size: number }[] | undefined {
  if (sector.length < 512 || sector[510] !== 0x55 || sector[511] !== 0xaa) return undefined;
  const entries = [];
  for (let i = 0; i < 4; i++) {
    const e = sector.subarray(446 + i * 16, 462 + i * 16);
    entries.push({ status: e[0]!, type: e[4]!, start: e.readUInt32LE(8), size: e.readUInt32LE(12) });
  }
  if (entries.some((e) => e.status !== 0 && e.status !== 0x80)) return undefined;
  if (!entries.some((e) => e.type !== 0 && e.size !== 0)) return undefined;
  return entries;
}

/** Which partition table the first sectors hold, if any (GPT wins over its protective MBR). */
export async function detectPartitionTable(src: RandomAccessSource): Promise<TableKind | undefined> {
  if (src.size < 2 * SECTOR) return undefined;
  const head = await src.read(0, Math.min(src.size, 8192));
  for (const ss of [512, 4096]) {
    if (head.length >= ss + 8 && head.subarray(ss, ss + 8).toString('latin1') === 'EFI PART') return 'gpt';
  }
  return mbrEntries(head.subarray(0, 512)) ? 'mbr' : undefined;
}

export async function listPartitions(src: RandomAccessSource): Promise<Partition[]> {
  const kind = await detectPartitionTable(src);
  if (kind === 'gpt') return listGpt(src);
  if (kind === 'mbr') return listMbr(src);
  throw invalid(src, 'no MBR or GPT partition table found');
}

async function listMbr(src: RandomAccessSource): Promise<Partition[]> {
  const entries = mbrEntries(await src.read(0, SECTOR))!;
  const out: Partition[] = [];
  let extended: { start: number; size: number } | undefined;
  entries.forEach((e, i) => {
    if (e.type === 0 || e.size === 0) return;
    const isExt = MBR_EXTENDED.has(e.type);
    out.push({ index: i + 1, start: e.start, size: e.size, sectorSize: SECTOR, type: e.type.toString(16), name: '', ...(isExt ? { extended: true } : {}) });
    if (isExt && !extended) extended = { start: e.start, size: e.size };
  });
  if (extended) {
    // Logical partitions: a chain of EBRs; entry 0 is the logical (relative to its EBR), entry 1 links the
    // next EBR (relative to the extended partition). The chain is bounded and must not revisit an EBR.
    const seen = new Set<number>();
    let ebr = extended.start;
    let index = 5;
    while (true) {
      if (seen.has(ebr) || seen.size >= MAX_LOGICAL) throw invalid(src, 'the chain of logical partitions loops or is too long');
      seen.add(ebr);
      if ((ebr + 1) * SECTOR > src.size) throw invalid(src, `extended boot record at sector ${ebr} lies past the end of the image`);
      const sector = await src.read(ebr * SECTOR, SECTOR);
      if (sector[510] !== 0x55 || sector[511] !== 0xaa) throw invalid(src, `extended boot record at sector ${ebr} has no signature`);
      const logical = sector.subarray(446, 462);
      const link = sector.subarray(462, 478);
      if (logical[4] !== 0 && logical.readUInt32LE(12) !== 0) {
        out.push({ index: index++, start: ebr + logical.readUInt32LE(8), size: logical.readUInt32LE(12), sectorSize: SECTOR, type: logical[4]!.toString(16), name: '' });
      }
      if (link[4] === 0 || link.readUInt32LE(12) === 0) break;
      ebr = extended.start + link.readUInt32LE(8);
    }
  }
  return out;
}

/** GUIDs are stored mixed-endian: the first three fields little-endian, the rest as bytes. */
function guid(b: Buffer): string {
  const hex = (x: Buffer) => x.toString('hex');
  const rev = (x: Buffer) => hex(Buffer.from(x).reverse());
  return `${rev(b.subarray(0, 4))}-${rev(b.subarray(4, 6))}-${rev(b.subarray(6, 8))}-${hex(b.subarray(8, 10))}-${hex(b.subarray(10, 16))}`.toUpperCase();
}

interface GptHeader {
  entriesLba: number;
  count: number;
  entrySize: number;
  entriesCrc: number;
}

/** Read and check a GPT header at `lba` (header CRC32); undefined when absent or corrupt. */
async function gptHeader(src: RandomAccessSource, lba: number, ss: number): Promise<GptHeader | undefined> {
  if ((lba + 1) * ss > src.size) return undefined;
  const h = await src.read(lba * ss, ss);
  if (h.subarray(0, 8).toString('latin1') !== 'EFI PART') return undefined;
  const headerSize = h.readUInt32LE(12);
  if (headerSize < 92 || headerSize > ss) return undefined;
  const copy = Buffer.from(h.subarray(0, headerSize));
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== h.readUInt32LE(16)) return undefined;
  const entriesLba = Number(h.readBigUInt64LE(72));
  const count = h.readUInt32LE(80);
  const entrySize = h.readUInt32LE(84);
  if (entrySize < 128 || entrySize % 8 !== 0 || count * entrySize > MAX_GPT_ENTRIES_BYTES) return undefined;
  return { entriesLba, count, entrySize, entriesCrc: h.readUInt32LE(88) };
}

async function listGpt(src: RandomAccessSource): Promise<Partition[]> {
  const head = await src.read(0, Math.min(src.size, 8192));
  const ss = head.length >= 520 && head.subarray(512, 520).toString('latin1') === 'EFI PART' ? 512 : 4096;
  const lastLba = Math.floor(src.size / ss) - 1;
  // The backup header (last sector) stands in when the primary fails its CRC, as sfdisk and the kernel do.
  let header: GptHeader | undefined;
  let entries: Buffer | undefined;
  for (const lba of [1, lastLba]) {
    header = await gptHeader(src, lba, ss);
    if (!header) continue;
    const len = header.count * header.entrySize;
    if (header.entriesLba * ss + len > src.size) continue;
    const table = await src.read(header.entriesLba * ss, len);
    if (crc32(table) === header.entriesCrc) {
      entries = table;
      break;
    }
  }
  if (!header || !entries) throw invalid(src, 'the GPT header or partition entries fail their CRC32 checks (primary and backup)');
  const out: Partition[] = [];
  for (let i = 0; i < header.count; i++) {
    const e = entries.subarray(i * header.entrySize, (i + 1) * header.entrySize);
    const type = e.subarray(0, 16);
    if (type.every((b) => b === 0)) continue;
    const first = Number(e.readBigUInt64LE(32));
    const last = Number(e.readBigUInt64LE(40));
    if (last < first) throw invalid(src, `GPT entry ${i + 1} ends (LBA ${last}) before it starts (LBA ${first})`);
    const nameRaw = e.subarray(56, 128);
    let end = 0;
    while (end + 1 < nameRaw.length && (nameRaw[end] !== 0 || nameRaw[end + 1] !== 0)) end += 2;
    out.push({ index: i + 1, start: first, size: last - first + 1, sectorSize: ss, type: guid(type), name: nameRaw.subarray(0, end).toString('utf16le'), uuid: guid(e.subarray(16, 32)) });
  }
  return out;
}

/** Partition `index` (1-based, as listed) as a slice of the disk image (an extended partition too: its raw range). */
export async function openPartition(src: RandomAccessSource, index: number): Promise<RandomAccessSource> {
  const parts = await listPartitions(src);
  const p = parts.find((x) => x.index === index);
  if (!p) {
    throw new UsageError(`there is no partition ${index}; the disk has ${parts.map((x) => x.index).join(', ') || 'none'}`, { file: src.name, code: 'no-partition' });
  }
  const offset = p.start * p.sectorSize;
  const length = p.size * p.sectorSize;
  if (offset + length > src.size) {
    throw new InvalidInputError('truncated', `partition ${index} spans bytes ${offset}..${offset + length} but the image holds ${src.size}; the disk image is truncated`, { file: src.name });
  }
  return src.slice(offset, length, `${src.name} (partition ${index})`);
}
