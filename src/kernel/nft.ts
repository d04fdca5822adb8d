/**
 * nftables through libnftables (the library behind the `nft` command), ~80 µs a transaction
 * against 6-18 ms for an `nft` process. A context binds its netlink socket to the namespace it
 * was created in, so one context is made per namespace, once.
 */
import koffi from 'koffi';

type Ctx = unknown;

interface Lib {
  ctxNew: (flags: number) => Ctx;
  bufferOutput: (ctx: Ctx) => number;
  bufferError: (ctx: Ctx) => number;
  setFlags: (ctx: Ctx, flags: number) => void;
  run: (ctx: Ctx, text: string) => number;
  output: (ctx: Ctx) => string;
  error: (ctx: Ctx) => string;
}

let lib: Lib | undefined;

function load(): Lib {
  if (lib) return lib;
  let so;
  try {
    so = koffi.load('libnftables.so.1');
  } catch (err) {
    throw new Error('libnftables.so.1 not found: install Debian package libnftables1 (apt-get install nftables)', {
      cause: err,
    });
  }
  lib = {
    ctxNew: so.func('void *nft_ctx_new(uint32_t flags)'),
    bufferOutput: so.func('int nft_ctx_buffer_output(void *ctx)'),
    bufferError: so.func('int nft_ctx_buffer_error(void *ctx)'),
    setFlags: so.func('void nft_ctx_output_set_flags(void *ctx, uint32_t flags)'),
    run: so.func('int nft_run_cmd_from_buffer(void *ctx, const char *buf)'),
    output: so.func('const char *nft_ctx_get_output_buffer(void *ctx)'),
    error: so.func('const char *nft_ctx_get_error_buffer(void *ctx)'),
  };
  return lib;
}

const NFT_CTX_OUTPUT_JSON = 1 << 4;

export class NftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NftError';
  }
}

export class NftContext {
  private readonly ctx: Ctx;
  private readonly lib = load();

  /** Binds to the calling thread's current namespace. */
  constructor(json = false) {
    this.ctx = this.lib.ctxNew(0);
    this.lib.bufferOutput(this.ctx);
    this.lib.bufferError(this.ctx);
    if (json) this.lib.setFlags(this.ctx, NFT_CTX_OUTPUT_JSON);
  }

  /**
   * Runs a script (one transaction) and returns what nft printed. A transaction that met EINTR
   * (the kernel interrupts a netlink dump that races with another change) was not applied, so it
   * is simply run again.
   */
  run(script: string): string {
    for (let attempt = 1; ; attempt++) {
      const rc = this.lib.run(this.ctx, script);
      const out = this.lib.output(this.ctx) ?? '';
      if (rc === 0) return out;
      const error = (this.lib.error(this.ctx) ?? '').trim();
      if (attempt < 5 && error.includes('Interrupted system call')) continue;
      throw new NftError(`nftables rejected the change: ${error}`);
    }
  }
}
