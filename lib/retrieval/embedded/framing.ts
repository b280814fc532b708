import { crc32 } from 'node:zlib';

/**
 * How one record is written to a journal or staging file: `J1 <bytes of JSON> <crc32 of JSON, hex> <JSON>`. The
 * length and checksum let a reader tell a whole record from a torn one anywhere in the file, so it takes a record
 * whole or not at all and skips a torn one without losing the records after it. Unframed lines (written before
 * framing) start with `{` and are still read.
 */
const FRAME = /^J1 (\d+) ([0-9a-f]{8}) /;

/** One journal line for a record: framed so that a torn or corrupt record is recognised and skipped. */
export function frameRecord(json: string): string {
  const bytes = Buffer.from(json);
  return `J1 ${bytes.length} ${crc32(bytes).toString(16).padStart(8, '0')} ${json}\n`;
}

/** The JSON of a framed (or legacy unframed) journal line, or undefined when the line is torn or corrupt. */
export function unframeRecord(line: string): string | undefined {
  if (line.startsWith('{')) {
    try {
      JSON.parse(line);
      return line;
    } catch {
      return undefined;
    }
  }
  const frame = FRAME.exec(line);
  if (!frame) return undefined;
  const json = Buffer.from(line.slice(frame[0].length));
  if (json.length !== Number(frame[1]) || crc32(json).toString(16).padStart(8, '0') !== frame[2]) return undefined;
  return json.toString();
}
