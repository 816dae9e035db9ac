/**
 * Reads the HTTP/2 frames of one connection as they pass, without changing a
 * byte: the client's HEADERS frames (decoded with HPACK) tell each stream's
 * `:path`, and the member's frame headers tell which streams an answer chunk
 * belongs to. Frames may be split across chunks and chunks may hold many frames.
 */
import { type HeaderList, HpackDecoder } from './hpack.js';

const FRAME_HEADER = 9;
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  stream: number;
}

/**
 * Splits a byte stream into frames. Frames of the types in `whole` are
 * reported with their payload once it has all arrived; the others at once,
 * with their header only, and their payload is skipped as it passes.
 */
class FrameSplitter {
  #pending = Buffer.alloc(0);
  /** Payload bytes of the current frame still to skip. */
  #skip = 0;

  constructor(
    private readonly whole: ReadonlySet<number>,
    private readonly onFrame: (frame: FrameHeader, payload: Buffer | undefined) => void,
  ) {}

  push(chunk: Buffer): void {
    const bytes = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    let at = 0;
    for (;;) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, bytes.length - at);
        this.#skip -= n;
        at += n;
        if (this.#skip > 0) break;
      }
      if (bytes.length - at < FRAME_HEADER) break;
      const frame: FrameHeader = {
        length: bytes.readUIntBE(at, 3),
        type: bytes[at + 3]!,
        flags: bytes[at + 4]!,
        stream: bytes.readUInt32BE(at + 5) & 0x7fffffff,
      };
      if (!this.whole.has(frame.type)) {
        at += FRAME_HEADER;
        this.#skip = frame.length;
        this.onFrame(frame, undefined);
        continue;
      }
      const end = at + FRAME_HEADER + frame.length;
      if (bytes.length < end) break;
      this.onFrame(frame, bytes.subarray(at + FRAME_HEADER, end));
      at = end;
    }
    // Copied, so a large chunk is not kept alive by the few bytes left of it.
    this.#pending = Buffer.from(bytes.subarray(at));
  }
}

/** The HTTP/2 traffic of one connection, from the frames of both directions. */
export class H2Peek {
  /** `:path` of each stream the client opened whose answer has not ended yet. */
  readonly #paths = new Map<number, string>();
  readonly #decoder = new HpackDecoder();
  /** The highest stream the client opened: a HEADERS frame on a stream at or below it is a trailer. */
  #lastStream = 0;
  /** Fragments of a header block still waiting for its CONTINUATION frames. */
  #block: { stream: number; parts: Buffer[] } | undefined;
  /** A header block could not be decoded: paths are unknown from then on. */
  #lost = false;
  #opened: string[] = [];
  #answered: string[] = [];

  readonly #fromClient = new FrameSplitter(new Set([HEADERS, CONTINUATION]), (frame, payload) =>
    this.#clientFrame(frame, payload),
  );
  readonly #fromMember = new FrameSplitter(new Set(), (frame) => this.#memberFrame(frame));

  /** Client bytes after the connection preface; returns the paths of the requests opened in them. */
  requests(chunk: Buffer): string[] {
    this.#opened = [];
    if (!this.#lost) this.#fromClient.push(chunk);
    return this.#opened;
  }

  /** Member bytes; returns the paths of the requests whose answer (headers, data or trailers) they carry. */
  answers(chunk: Buffer): string[] {
    this.#answered = [];
    this.#fromMember.push(chunk);
    return this.#answered;
  }

  #clientFrame(frame: FrameHeader, payload: Buffer | undefined) {
    if (payload === undefined) {
      if (frame.type === RST_STREAM) this.#paths.delete(frame.stream);
      return;
    }
    if (frame.type === HEADERS) {
      let start = 0;
      let end = payload.length;
      if (frame.flags & PADDED) {
        end -= payload[0] ?? 0;
        start = 1;
      }
      if (frame.flags & PRIORITY) start += 5;
      this.#block = {
        stream: frame.stream,
        parts: [payload.subarray(start, Math.max(start, end))],
      };
    } else if (this.#block?.stream === frame.stream) {
      this.#block.parts.push(payload);
    } else {
      this.#lost = true; // a CONTINUATION that continues nothing: out of step with the stream
      return;
    }
    if ((frame.flags & END_HEADERS) === 0) return;
    const { stream, parts } = this.#block;
    this.#block = undefined;
    let headers: HeaderList;
    try {
      headers = this.#decoder.decode(Buffer.concat(parts));
    } catch {
      this.#lost = true;
      return;
    }
    if (stream <= this.#lastStream) return; // trailers of a request
    this.#lastStream = stream;
    const path = headers.find(([name]) => name === ':path')?.[1] ?? '';
    this.#paths.set(stream, path);
    this.#opened.push(path);
  }

  #memberFrame(frame: FrameHeader) {
    const path = this.#paths.get(frame.stream);
    if (path === undefined) return;
    if (frame.type === HEADERS || frame.type === DATA || frame.type === CONTINUATION) {
      this.#answered.push(path);
    }
    const ended = frame.flags & END_STREAM && (frame.type === HEADERS || frame.type === DATA);
    if (ended || frame.type === RST_STREAM) this.#paths.delete(frame.stream);
  }
}
