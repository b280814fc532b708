import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChunkStore } from '../../lib/domain.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { describeStoreContract } from '../support/store-contract.js';

describeStoreContract('embedded', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-store-'));
  let current: ChunkStore = await EmbeddedStore.open(dir);
  return {
    store: current,
    reopen: async () => {
      await current.close();
      current = await EmbeddedStore.open(dir);
      return current;
    },
    dispose: async () => {
      await current.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
