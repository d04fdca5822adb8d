/**
 * Fault injection for the daemons a test file starts (src/kernel/faults.ts): a file named in
 * BERTH_KERNEL_FAULTS in this process's environment, which a daemon inherits when it starts and
 * then reads at each kernel call; its lines name the operations to fail.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export class KernelFaults {
  readonly file: string;

  constructor(tag: string) {
    this.file = path.join(os.tmpdir(), `berth-${tag}-faults-${process.pid}`);
  }

  /** The file, empty (no faults yet), named in the environment for the daemons started next. */
  arm(): void {
    this.inject('');
    process.env.BERTH_KERNEL_FAULTS = this.file;
  }

  /** Daemons started from now on get no faults; those started already keep reading the file. */
  unsetEnv(): void {
    delete process.env.BERTH_KERNEL_FAULTS;
  }

  inject(text: string): void {
    fs.writeFileSync(this.file, text);
  }

  /** For after(): the environment variable and the file go. */
  remove(): void {
    this.unsetEnv();
    fs.rmSync(this.file, { force: true });
  }
}
