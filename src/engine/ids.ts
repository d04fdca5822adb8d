import { randomBytes } from 'node:crypto';

/** 64 hex digits, like Docker's ids; the first 12 are the short id. */
export const newId = () => randomBytes(32).toString('hex');
export const shortId = (id: string) => id.slice(0, 12);
