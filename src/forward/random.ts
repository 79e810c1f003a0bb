// Query IDs for the upstream leg (RFC 5452 §9.2: unpredictable). A crypto call
// per query would show in the profile, so IDs come from a block of CSPRNG
// output refilled every 4096 draws.

import { randomFillSync } from 'node:crypto';

const RANDOM_BLOCK = 8192;

export function createRandom16(): () => number {
  const block = Buffer.alloc(RANDOM_BLOCK);
  let pos = RANDOM_BLOCK;
  return () => {
    if (pos >= RANDOM_BLOCK) {
      randomFillSync(block);
      pos = 0;
    }
    const v = (block[pos]! << 8) | block[pos + 1]!;
    pos += 2;
    return v;
  };
}
