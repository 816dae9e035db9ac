/**
 * The limit of the HTTP path: an undici Pool sending request bodies encoded
 * before the measured phase, and reading each answer's body as text. No
 * validation, no timers, no decoding beyond what the operation needs to go on
 * (a lease ID to revoke). Any JSON client of the gateway does at least this.
 */
import { Pool } from 'undici';

const HEADERS = { 'content-type': 'application/json' };

export class RawGateway {
  readonly #pool: Pool;

  constructor(endpoint: string, connections: number) {
    this.#pool = new Pool(endpoint, { connections, pipelining: 1 });
  }

  /** `POST /v3/<method>` with a ready body; resolves to the answer's text. */
  async post(method: string, body: string): Promise<string> {
    const res = await this.#pool.request({
      method: 'POST',
      path: `/v3/${method}`,
      body,
      headers: HEADERS,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`${method}: HTTP ${res.statusCode}: ${text}`);
    return text;
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}
