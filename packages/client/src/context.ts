/** What the KV, txn and lease functions share: the transport and the encoding rules. */
import type { KeySpace } from './bytes.js';
import type { Codec } from './codec.js';
import { Decoder, Encoder, type EncoderLimits } from './ops.js';
import type { Transport } from './transport.js';

export class Context<V> {
  readonly decoder: Decoder<V>;

  constructor(
    readonly transport: Transport,
    readonly keys: KeySpace,
    readonly codec: Codec<V>,
    readonly limits: EncoderLimits,
    /** Default TTL in seconds for `set`, `setnx` and `setx`; 0 or less: none. */
    readonly ttl: number,
  ) {
    this.decoder = new Decoder(keys, codec);
  }

  /** A fresh encoder: each request counts its own bytes. */
  encoder(): Encoder {
    return new Encoder(this.keys, this.codec as Codec<unknown>, this.limits);
  }
}
