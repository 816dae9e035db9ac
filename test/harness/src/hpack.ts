/**
 * An HPACK decoder (RFC 7541): turns the header blocks of one HTTP/2
 * connection direction back into header lists. The fault proxy reads request
 * headers with it to learn each stream's `:path`; it never encodes.
 *
 * One decoder per connection direction, fed every header block in the order
 * they were sent: the dynamic table is shared by all of them.
 */

/** The static table (RFC 7541 Appendix A), index 1 first. */
const STATIC: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  ...['200', '204', '206', '304', '400', '404', '500'].map((s) => [':status', s] as const),
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ...(
    'accept-language accept-ranges accept access-control-allow-origin age allow authorization ' +
    'cache-control content-disposition content-encoding content-language content-length ' +
    'content-location content-range content-type cookie date etag expect expires from host ' +
    'if-match if-modified-since if-none-match if-range if-unmodified-since last-modified link ' +
    'location max-forwards proxy-authenticate proxy-authorization range referer refresh ' +
    'retry-after server set-cookie strict-transport-security transfer-encoding user-agent vary ' +
    'via www-authenticate'
  )
    .split(' ')
    .map((name) => [name, ''] as const),
];

/**
 * Length in bits of the Huffman code of each symbol 0..256 (RFC 7541 Appendix
 * B; 256 is EOS). The code is canonical: codes of one length are consecutive,
 * in symbol order, and follow every shorter code, so the lengths define it.
 */
// biome-ignore format: a table, 16 symbols a row
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;

/** For each code length: its first code, how many codes have it, and where their symbols start in `SYMBOLS`. */
interface LengthRow {
  first: number;
  count: number;
  start: number;
}

/** Symbols in code order (by length, then by symbol). */
const SYMBOLS = [...CODE_LENGTHS.keys()].sort(
  (a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b,
);

const ROWS: LengthRow[] = (() => {
  const rows: LengthRow[] = Array.from({ length: 31 }, () => ({ first: 0, count: 0, start: 0 }));
  let code = 0;
  let length = 0;
  SYMBOLS.forEach((symbol, i) => {
    const bits = CODE_LENGTHS[symbol]!;
    code <<= bits - length;
    length = bits;
    const row = rows[bits]!;
    if (row.count === 0) Object.assign(row, { first: code, start: i });
    row.count++;
    code++;
  });
  return rows;
})();

/** Decodes a Huffman-coded string; the padding (up to 7 bits of the EOS prefix) is dropped. */
export function huffmanDecode(bytes: Buffer): string {
  const out: number[] = [];
  let code = 0;
  let length = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      length++;
      const row = ROWS[length];
      if (row === undefined) throw new Error('hpack: Huffman code longer than 30 bits');
      if (row.count > 0 && code >= row.first && code - row.first < row.count) {
        const symbol = SYMBOLS[row.start + code - row.first]!;
        if (symbol === EOS) throw new Error('hpack: EOS inside a string');
        out.push(symbol);
        code = 0;
        length = 0;
      }
    }
  }
  if (length > 7 || code !== (1 << length) - 1) throw new Error('hpack: bad Huffman padding');
  return Buffer.from(out).toString('latin1');
}

/** Per RFC 7541, 4.1: an entry costs its name and value lengths plus 32 octets. */
const entrySize = (name: string, value: string) => name.length + value.length + 32;

export type HeaderList = [name: string, value: string][];

export class HpackDecoder {
  /** Newest first, so dynamic index 62 is `#table[0]`. */
  #table: [string, string][] = [];
  #size = 0;
  /** The most recent table size the encoder announced (the HTTP/2 default until then). */
  #maxSize = 4096;
  #block: Buffer = Buffer.alloc(0);
  #at = 0;

  /** Decodes one complete header block. Throws on a malformed block; the decoder is then unusable. */
  decode(block: Buffer): HeaderList {
    this.#block = block;
    this.#at = 0;
    const headers: HeaderList = [];
    while (this.#at < block.length) {
      const first = block[this.#at]!;
      if (first & 0x80) {
        headers.push(this.#entry(this.#integer(7)));
      } else if (first & 0x40) {
        const header = this.#literal(6);
        this.#add(header);
        headers.push(header);
      } else if (first & 0x20) {
        this.#maxSize = this.#integer(5);
        this.#evict(0);
      } else {
        headers.push(this.#literal(4));
      }
    }
    return headers;
  }

  #entry(index: number): [string, string] {
    const entry =
      index <= STATIC.length ? STATIC[index - 1] : this.#table[index - STATIC.length - 1];
    if (index === 0 || entry === undefined) throw new Error(`hpack: no table entry ${index}`);
    return [entry[0], entry[1]];
  }

  /** A literal field whose name index has a `prefix`-bit prefix (0: the name follows as a string). */
  #literal(prefix: number): [string, string] {
    const index = this.#integer(prefix);
    const name = index === 0 ? this.#string() : this.#entry(index)[0];
    return [name, this.#string()];
  }

  #add([name, value]: [string, string]) {
    const size = entrySize(name, value);
    this.#evict(size);
    // An entry larger than the whole table empties it and is not added (RFC 7541, 4.4).
    if (size > this.#maxSize) return;
    this.#table.unshift([name, value]);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  #evict(room: number) {
    while (this.#size + room > this.#maxSize && this.#table.length > 0) {
      const [name, value] = this.#table.pop()!;
      this.#size -= entrySize(name, value);
    }
  }

  /** An integer with an N-bit prefix (RFC 7541, 5.1). */
  #integer(prefix: number): number {
    const mask = (1 << prefix) - 1;
    let value = this.#byte() & mask;
    if (value < mask) return value;
    for (let shift = 0; ; shift += 7) {
      if (shift > 28) throw new Error('hpack: integer too large');
      const byte = this.#byte();
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  }

  /** A string literal, Huffman-coded or raw (RFC 7541, 5.2). */
  #string(): string {
    const huffman = (this.#block[this.#at]! & 0x80) !== 0;
    const length = this.#integer(7);
    if (this.#at + length > this.#block.length) throw new Error('hpack: string past the block');
    const bytes = this.#block.subarray(this.#at, this.#at + length);
    this.#at += length;
    return huffman ? huffmanDecode(bytes) : bytes.toString('latin1');
  }

  #byte(): number {
    const byte = this.#block[this.#at++];
    if (byte === undefined) throw new Error('hpack: block ends inside a field');
    return byte;
  }
}
